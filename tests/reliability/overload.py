"""Open-loop offered load at a fixed rate, whatever the server answers: what back-pressure is
judged by. Each call's outcome and latency is kept; shared by the test and bench/backpressure.py."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
import httpx
from protoserve.inference.v1 import inference_service_pb2 as pb
from protoserve.inference.v1 import inference_service_pb2_grpc

# A request heavy enough that a small queue fills: many rows of text through the sentiment model.
TEXT = "the plot was thin but the acting was wonderful and the score moving, though far too long"
ROWS = 200


def heavy_request() -> pb.PredictRequest:
    request = pb.PredictRequest(model="sentiment", skip_cache=True)
    for i in range(ROWS):
        request.rows.add().update({"text": f"{TEXT} {i}"})
    return request


@dataclass
class Offered:
    outcomes: list[tuple[str, float]] = field(default_factory=list)  # (code, seconds)
    retry_hints: list[str] = field(default_factory=list)  # of each refused call: retry pushback or Retry-After

    def codes(self) -> Counter[str]:
        return Counter(code for code, _ in self.outcomes)

    def latencies(self, code: str) -> list[float]:
        return sorted(s for c, s in self.outcomes if c == code)


async def offer_grpc(address: str, rate: float, seconds: float, deadline: float = 60.0,
                     metadata: tuple[tuple[str, str], ...] = ()) -> Offered:
    """Send heavy Predict calls at ``rate`` per second for ``seconds``, not waiting for answers."""
    result = Offered()
    request = heavy_request()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = inference_service_pb2_grpc.InferenceServiceStub(channel)

        async def one() -> None:
            start = time.monotonic()
            try:
                await stub.Predict(request, metadata=metadata, timeout=deadline)
                code = "OK"
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
                hints = dict(exc.trailing_metadata() or ())
                result.retry_hints.append(str(hints.get("grpc-retry-pushback-ms", "")))
            result.outcomes.append((code, time.monotonic() - start))

        await _open_loop(one, rate, seconds)
    return result


async def offer_http(url: str, rate: float, seconds: float, deadline: float = 60.0,
                     headers: dict[str, str] | None = None) -> Offered:
    result = Offered()
    body = {"rows": [{"text": f"{TEXT} {i}"} for i in range(ROWS)], "skip_cache": True}
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=url, timeout=deadline, headers=headers, limits=limits) as client:
        async def one() -> None:
            start = time.monotonic()
            try:
                response = await client.post("/v1/models/sentiment:predict", json=body)
                code = "OK" if response.status_code == 200 else str(response.status_code)
                if response.status_code != 200:
                    result.retry_hints.append(response.headers.get("retry-after", ""))
            except httpx.TimeoutException:
                code = "timeout"
            result.outcomes.append((code, time.monotonic() - start))

        await _open_loop(one, rate, seconds)
    return result


async def _open_loop(one: object, rate: float, seconds: float) -> None:
    tasks = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        tasks.append(asyncio.create_task(one()))  # type: ignore[operator]
        n += 1
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    await asyncio.gather(*tasks)


async def capacity(address: str, seconds: float = 5.0, concurrency: int = 4,
                   metadata: tuple[tuple[str, str], ...] = ()) -> float:
    """Heavy calls per second the server sustains with ``concurrency`` callers in a closed loop."""
    request = heavy_request()
    done = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = inference_service_pb2_grpc.InferenceServiceStub(channel)
        stop = time.monotonic() + seconds

        async def caller() -> None:
            nonlocal done
            while time.monotonic() < stop:
                await stub.Predict(request, metadata=metadata, timeout=60)
                done += 1

        await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done / seconds
