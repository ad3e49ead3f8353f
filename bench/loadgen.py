"""A low-overhead Open Inference Protocol load generator: prebuilt request bytes over grpc.aio.

Each client process opens `connections` channels (4 by default) and keeps ``concurrency / processes`` calls in flight,
sending the same serialized ModelInferRequest (no protobuf work per call) and counting only
answers with gRPC status OK. Latencies are recorded after a warm-up. The driving loop (`drive`)
and the process fan-out (`run`) are shared with bench/http_loadgen.py, which sends v2 JSON.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

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


def call(address: str, request: bytes, timeout: float = 30) -> bytes:
    """One ModelInfer with the prebuilt request; the serialized answer."""
    with grpc.insecure_channel(address) as channel:
        return bytes(channel.unary_unary(MODEL_INFER)(request, timeout=timeout))


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


def tree_rss(pid: int) -> list[tuple[str, int]]:
    """(name, resident bytes) of a process and each of its descendants."""
    root = psutil.Process(pid)
    out = []
    for p in [root, *root.children(recursive=True)]:
        try:
            out.append((p.name(), p.memory_info().rss))
        except psutil.NoSuchProcess:
            pass
    return out


async def _cpu_window(server_pid: int, measure_from: float, stop_at: float) -> float:
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    start = tree_cpu(server_pid)
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    return tree_cpu(server_pid) - start


Sender = Callable[[], Awaitable[bool]]  # sends one request; True when it was answered OK
Result = tuple[list[float], int, float]  # OK latencies in ms, errors, server CPU seconds
# (address, request, concurrency, warmup, duration, server pid to sample or None) -> Result
Client = Callable[[str, bytes, int, float, float, int | None], Coroutine[Any, Any, Result]]


async def drive(
    senders: list[Sender], concurrency: int, warmup: float, duration: float, server_pid: int | None
) -> Result:
    """Keep `concurrency` requests in flight (spread over senders) for warmup + duration seconds;
    returns the OK latencies (ms) of the measured window, the errors, and the server's CPU seconds."""
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration

    async def loop(send: Sender) -> None:
        nonlocal errors
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                return
            if not await send():
                errors += 1
                continue
            done = time.perf_counter()
            if sent >= measure_from and done <= stop_at:
                latencies.append((done - sent) * 1000)

    cpu = asyncio.create_task(_cpu_window(server_pid, measure_from, stop_at)) if server_pid else None
    await asyncio.gather(*(loop(senders[i % len(senders)]) for i in range(concurrency)))
    cpu_seconds = await cpu if cpu else 0.0
    return latencies, errors, cpu_seconds


async def grpc_client(
    address: str, request: bytes, concurrency: int, warmup: float, duration: float, server_pid: int | None,
    connections: int = CHANNELS_PER_PROCESS,
) -> Result:
    """Open Inference Protocol over gRPC: ModelInfer with the prebuilt request, OK = status OK; calls
    spread over `connections` channels (at most one per call in flight). Bind it with functools.partial."""
    # Several connections (a local subchannel pool each), as many clients would open, so that the
    # kernel can spread them over servers that share the port with SO_REUSEPORT; one connection
    # shows what a single client (one HTTP/2 connection, one server process) gets.
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(min(concurrency, connections))
    ]

    def sender(call: grpc.aio.UnaryUnaryMultiCallable) -> Sender:
        async def send() -> bool:
            try:
                await call(request, timeout=30)
            except grpc.aio.AioRpcError:
                return False
            return True

        return send

    try:
        return await drive([sender(c.unary_unary(MODEL_INFER)) for c in channels], concurrency, warmup, duration, server_pid)
    finally:
        for channel in channels:
            await channel.close()


def _process(
    client: Client, address: str, request: bytes, concurrency: int, warmup: float, duration: float,
    server_pid: int | None, out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    out.put(asyncio.run(client(address, request, concurrency, warmup, duration, server_pid)))


def run(
    address: str, request: bytes, concurrency: int, processes: int, warmup: float, duration: float, server_pid: int,
    client: Client = grpc_client,
) -> Point:
    """Drive address with client from `processes` processes for warmup + duration seconds; figures
    cover the duration only (the first client process samples the server's CPU over that window)."""
    processes = max(1, min(processes, concurrency))
    shares = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [
        context.Process(
            target=_process, args=(client, address, request, n, warmup, duration, server_pid if i == 0 else None, out)
        )
        for i, n in enumerate(shares)
    ]
    for w in workers:
        w.start()
    results = [out.get(timeout=warmup + duration + 120) for _ in workers]
    for w in workers:
        w.join()
    latencies = np.concatenate([np.array(r[0]) for r in results])
    return Point(len(latencies), sum(r[1] for r in results), duration, latencies, sum(r[2] for r in results))
