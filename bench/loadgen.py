"""A low-overhead Open Inference Protocol load generator: prebuilt request bytes over grpc.aio.

Each client process opens one channel and keeps ``concurrency / processes`` calls in flight,
sending the same serialized ModelInferRequest (no protobuf work per call) and counting only
answers with gRPC status OK. Latencies are recorded after a warm-up.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass

import grpc
import numpy as np
import psutil

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
SERVER_READY = "/inference.GRPCInferenceService/ServerReady"
READY_TRUE = b"\x08\x01"  # ServerReadyResponse(ready=true), serialized
CHANNELS_PER_PROCESS = 4


@dataclass(frozen=True)
class Point:
    requests: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray
    server_cpu_seconds: float  # CPU time of the server's process tree in the measured window

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_seconds / max(self.requests, 1)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else float("nan")


def server_ready(address: str, timeout: float = 1.0) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            return bool(channel.unary_unary(SERVER_READY)(b"", timeout=timeout) == READY_TRUE)
        except grpc.RpcError:
            return False


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants."""
    total = 0.0
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


async def _cpu_window(server_pid: int, measure_from: float, stop_at: float) -> float:
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    start = tree_cpu(server_pid)
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    return tree_cpu(server_pid) - start


async def _client(
    address: str, request: bytes, concurrency: int, warmup: float, duration: float, server_pid: int | None
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    # Several connections (a local subchannel pool each), as many clients would open, so that the
    # kernel can spread them over servers that share the port with SO_REUSEPORT.
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(min(concurrency, CHANNELS_PER_PROCESS))
    ]
    try:
        calls = [channel.unary_unary(MODEL_INFER) for channel in channels]
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + duration

        async def loop(call: grpc.aio.UnaryUnaryMultiCallable) -> None:
            nonlocal errors
            while True:
                sent = time.perf_counter()
                if sent >= stop_at:
                    return
                try:
                    await call(request, timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                done = time.perf_counter()
                if sent >= measure_from and done <= stop_at:
                    latencies.append((done - sent) * 1000)

        cpu = asyncio.create_task(_cpu_window(server_pid, measure_from, stop_at)) if server_pid else None
        await asyncio.gather(*(loop(calls[i % len(calls)]) for i in range(concurrency)))
        cpu_seconds = await cpu if cpu else 0.0
    finally:
        for channel in channels:
            await channel.close()
    return latencies, errors, cpu_seconds


def _process(
    address: str, request: bytes, concurrency: int, warmup: float, duration: float, server_pid: int | None,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    out.put(asyncio.run(_client(address, request, concurrency, warmup, duration, server_pid)))


def run(
    address: str, request: bytes, concurrency: int, processes: int, warmup: float, duration: float, server_pid: int
) -> Point:
    """Drive address for warmup + duration seconds; figures cover the duration only (the first
    client process samples the server's CPU over that window)."""
    processes = max(1, min(processes, concurrency))
    shares = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [
        context.Process(target=_process, args=(address, request, n, warmup, duration, server_pid if i == 0 else None, out))
        for i, n in enumerate(shares)
    ]
    for w in workers:
        w.start()
    results = [out.get(timeout=warmup + duration + 120) for _ in workers]
    for w in workers:
        w.join()
    latencies = np.concatenate([np.array(r[0]) for r in results])
    return Point(len(latencies), sum(r[1] for r in results), duration, latencies, sum(r[2] for r in results))
