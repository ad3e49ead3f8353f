"""Soak: the whole system under steady mixed load (10 minutes by default), then each process's RSS
growth after warm-up, descriptor growth, Redis keys and every call's outcome.

    .venv/bin/python -m bench.soak --minutes 10 --rate 20
"""

from __future__ import annotations

from bench.reliability_system import arguments, running_system
from tests.reliability.soak import soak


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the first resource sample")
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second, all kinds together")
    args = parser.parse_args()
    with running_system(args.models) as system:
        result = soak(system, seconds=args.minutes * 60, warmup=args.warmup, rate=args.rate)
    print(f"soak: {result.seconds:.0f} s at {args.rate:g} calls/s")
    print("\n| call | OK | failed |\n|---|---|---|")
    for kind, counts in sorted(result.record.summary().items()):
        failed = sum(n for code, n in counts.items() if code != "OK")
        print(f"| {kind} | {counts['OK']} | {failed} {dict(counts) if failed else ''} |")
    print("\n| process | RSS after warm-up (MiB) | RSS at end (MiB) | growth | fds after warm-up | fds at end |")
    print("|---|---|---|---|---|---|")
    growth = result.rss_growth()
    for name, (rss, fds) in sorted(result.after_warmup.items()):
        end_rss, end_fds = result.at_end.get(name, (0, 0))
        print(f"| {name.split('/')[0]} | {rss / 2**20:.1f} | {end_rss / 2**20:.1f} | {growth.get(name, 0):+.1%} "
              f"| {fds} | {end_fds} |")
    print(f"\nRedis keys: {result.keys_after_warmup} after warm-up, {result.keys_at_end} at the end")
    print(f"jobs lost: {result.jobs_lost}, jobs duplicated: {result.jobs_duplicated}")


if __name__ == "__main__":
    main()
