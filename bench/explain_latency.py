"""Explain latency per built-in model at concurrency 1 and 8, beside Predict on the same rows.

Starts the explain and inference services as `protoserve up` would (each its own process, on
ephemeral ports) over a model repository (built if missing), then sends the same one-row request
over and over and prints a markdown table of p50/p99 latency and throughput.

    .venv/bin/python -m bench.explain_latency [--repository models] [--requests 200] [--concurrency 1 8]
        [--explain-workers N]   (default: the service's default, one worker per CPU)

Each concurrent caller has a connection of its own, as separate clients would: the kernel spreads
connections, not calls, over a service's worker processes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from protoserve.explain.v1 import explain_service_pb2 as epb
from protoserve.explain.v1 import explain_service_pb2_grpc as epb_grpc
from protoserve.inference.v1 import inference_service_pb2 as ipb
from protoserve.inference.v1 import inference_service_pb2_grpc as ipb_grpc

from protoserve_models.builtin.build import build_models
from protoserve_models.repository import ModelRepository
from tests.harness import ServiceProcess

ROWS: dict[str, dict[str, Any]] = {
    "risk": {},  # filled from the card's reference sample
    "sentiment": {"text": "The battery died after a week and support never answered. Terrible, but the screen is lovely."},
    "iris-knn": {"sepal_length": 6.1, "sepal_width": 2.8, "petal_length": 4.7, "petal_width": 1.2},
    "regression-gp": {"age": 50.0, "bmi": 32.1, "bp": 101.0, "s5": 4.9},
}


def struct(row: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(row)
    return s


def warmup_calls(callers: int) -> int:
    """The calls measure() makes before it times any: at least 10, and one per caller at least."""
    return callers * max(1, 10 // callers)


async def measure(calls: list[Callable[[], Awaitable[Any]]], requests: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests per second) of `requests` calls, one caller per entry of calls
    (each on a connection of its own) in flight."""
    for call in calls * (warmup_calls(len(calls)) // len(calls)):  # warm every connection and the caches
        await call()
    latencies: list[float] = []
    remaining = requests

    async def worker(call: Callable[[], Awaitable[Any]]) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker(call) for call in calls))
    elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000, len(latencies) / elapsed


async def run(explain_address: str, inference_address: str, requests: int, levels: list[int]) -> list[str]:
    lines = ["| model | method | concurrency | Explain p50 ms | Explain p99 ms | Explain req/s "
             "| Predict p50 ms | Predict p99 ms |", "|---|---|---|---|---|---|---|---|"]
    # One connection per concurrent caller, as separate clients would have: the kernel spreads
    # connections (not calls) over a service's worker processes.
    def channels(address: str) -> list[grpc.aio.Channel]:
        return [grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(max(levels))]

    e_channels, i_channels = channels(explain_address), channels(inference_address)
    try:
        explains = [epb_grpc.ExplainServiceStub(c) for c in e_channels]
        predicts = [ipb_grpc.InferenceServiceStub(c) for c in i_channels]
        for model, row in ROWS.items():
            e_request = epb.ExplainRequest(model=model, rows=[struct(row)])
            i_request = ipb.PredictRequest(model=model, rows=[struct(row)], skip_cache=True)
            method = epb.ExplanationMethod.Name((await explains[0].Explain(e_request)).method)
            explain_calls = [functools.partial(e.Explain, e_request, timeout=60) for e in explains]
            predict_calls = [functools.partial(p.Predict, i_request, timeout=60) for p in predicts]
            for concurrency in levels:
                e50, e99, rate = await measure(explain_calls[:concurrency], requests)
                p50, p99, _ = await measure(predict_calls[:concurrency], requests)
                lines.append(f"| `{model}` | {method.removeprefix('EXPLANATION_METHOD_').lower()} | {concurrency} | "
                             f"{e50:.1f} | {e99:.1f} | {rate:.0f} | {p50:.2f} | {p99:.2f} |")
                print(lines[-1], flush=True)
    finally:
        for channel in e_channels + i_channels:
            await channel.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", default="models", help="model repository (built-in models are built if missing)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per model and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--explain-workers", type=int, help="explain worker processes (default: one per CPU)")
    args = parser.parse_args()
    repository = Path(args.repository).resolve()
    build_models(repository)
    models = ModelRepository(repository)
    models.load("risk", "1")
    sample = models.get("risk").card.reference_sample
    ROWS["risk"] = {name: values[0] for name, values in sample.items()}
    with tempfile.TemporaryDirectory() as logs:
        env = {"PROTOSERVE_MODEL_REPOSITORY": str(repository)}
        workers = {} if args.explain_workers is None else {"PROTOSERVE_EXPLAIN_WORKERS": str(args.explain_workers)}
        explain = ServiceProcess("explain_svc.main", "PROTOSERVE_EXPLAIN_ADDRESS", {**env, **workers},
                                 Path(logs) / "explain.log")
        inference = ServiceProcess("inference_svc.main", "PROTOSERVE_INFERENCE_ADDRESS", env, Path(logs) / "inference.log")
        try:
            explain.start()
            inference.start()
            print("\n".join(asyncio.run(run(explain.address, inference.address, args.requests, args.concurrency))))
        finally:
            explain.terminate()
            inference.terminate()


if __name__ == "__main__":
    main()
