"""Back-pressure: measure the heavy-request rate one replica sustains, then offer twice that,
open loop, straight over gRPC and through the gateway; report what was accepted, how fast, and
how fast the excess was refused.

    .venv/bin/python -m bench.backpressure --seconds 20
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bench.reliability_system import arguments
from protoserve_models.builtin.build import build_models
from tests.conftest import start_inference
from tests.gateway.conftest import start_gateway
from tests.reliability.overload import Offered, capacity, offer_grpc, offer_http


def quantile(values: list[float], q: float) -> str:
    return f"{values[min(len(values) - 1, int(q * len(values)))] * 1000:.0f}" if values else "-"


def row(label: str, offered: Offered, refused_code: str) -> str:
    codes = offered.codes()
    ok, refused = offered.latencies("OK"), offered.latencies(refused_code)
    other = {c: n for c, n in codes.items() if c not in ("OK", refused_code)}
    return (f"| {label} | {len(offered.outcomes)} | {codes['OK']} | {quantile(ok, 0.5)} | {quantile(ok, 0.99)} | "
            f"{codes[refused_code]} | {quantile(refused, 0.5)} | {quantile(refused, 0.99)} | {other or 0} |")


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--queue", default="16", help="PROTOSERVE_MAX_QUEUE_SIZE of the replica")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="protoserve-backpressure-") as tmp:
        root = Path(tmp)
        models = args.models or root / "models"
        if args.models is None:
            build_models(models)
        replica = start_inference(models, root, PROTOSERVE_INFERENCE_WORKERS="1", PROTOSERVE_MAX_QUEUE_SIZE=args.queue)
        gateway = start_gateway(root, [replica.address])
        try:
            sustainable = asyncio.run(capacity(replica.address, seconds=5, concurrency=2))
            rate = 2 * sustainable
            print(f"sustainable: {sustainable:.1f} heavy calls/s; offered {rate:.1f}/s for {args.seconds:g} s; "
                  f"queue limit {args.queue}\n")
            print("| path | offered | accepted | p50 ms | p99 ms | refused | refused p50 ms | refused p99 ms | other |")
            print("|---|---|---|---|---|---|---|---|---|")
            print(row("gRPC", asyncio.run(offer_grpc(replica.address, rate, args.seconds)), "RESOURCE_EXHAUSTED"))
            print(row("REST (gateway)", asyncio.run(offer_http(gateway.url, rate, args.seconds)), "429"))
        finally:
            gateway.terminate()
            replica.terminate()


if __name__ == "__main__":
    main()
