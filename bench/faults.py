"""Faults under load: SIGKILL each kind of process in turn while mixed load runs, restart it, and
report calls failed, jobs lost and duplicated (where jobs exist) and the time to recover.

    .venv/bin/python -m bench.faults --down 5 --after 10
"""

from __future__ import annotations

from bench.reliability_system import arguments, running_system
from tests.reliability.faults import inject


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--down", type=float, default=5.0, help="seconds a killed process stays down")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of load after recovery")
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    with running_system(args.models) as system:
        targets = [n for n in system.services if n in ("inference-0", "explain", "monitoring", "worker-0")]
        print("| killed | calls after the kill | failed | of which through the gateway | recovered after (s) | "
              "jobs lost | jobs duplicated |")
        print("|---|---|---|---|---|---|---|")
        for target in [*targets, "gateway", "redis"]:
            r = inject(system, target, down=args.down, after=args.after, rate=args.rate)
            via_gateway = sum(1 for o in r.record.failures(since=r.killed_at) if o.kind.startswith("rest"))
            recovered = f"{r.recovered_seconds:.1f}" if r.recovered_seconds is not None else "never"
            print(f"| {target} | {r.calls} | {r.failed} | {via_gateway} | {recovered} | {_n(r.jobs_lost)} | "
                  f"{_n(r.jobs_duplicated)} |", flush=True)


if __name__ == "__main__":
    main()
