"""Back-pressure: offered far more than it can serve, a replica with a small queue answers the
excess RESOURCE_EXHAUSTED (429 through the gateway) and serves the rest, instead of letting every
call wait until its deadline. (bench/backpressure.py measures it at twice the sustainable load.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_inference
from tests.gateway.conftest import GatewayProcess, start_gateway
from tests.harness import ServiceProcess
from tests.reliability.overload import capacity, offer_grpc, offer_http


@pytest.fixture(scope="module")
def small_queue(model_repository: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, GatewayProcess]]:
    logs = tmp_path_factory.mktemp("backpressure")
    replica = start_inference(model_repository, logs, PROTOSERVE_INFERENCE_WORKERS="1", PROTOSERVE_MAX_QUEUE_SIZE="2",
                              PROTOSERVE_MAX_BATCH_SIZE="200")
    gateway = start_gateway(logs, [replica.address])
    yield replica, gateway
    gateway.terminate()
    replica.terminate()


@pytest.mark.parametrize("path", ["grpc", "http"])
def test_excess_calls_are_refused_at_once_not_left_to_time_out(small_queue: tuple[ServiceProcess, GatewayProcess],
                                                                path: str) -> None:
    replica, gateway = small_queue
    sustainable = asyncio.run(capacity(replica.address, seconds=3, concurrency=2))
    rate = max(8.0, sustainable * 4)
    offered = asyncio.run(offer_grpc(replica.address, rate, seconds=3) if path == "grpc"
                          else offer_http(gateway.url, rate, seconds=3))
    refused = "RESOURCE_EXHAUSTED" if path == "grpc" else "429"
    codes = offered.codes()
    assert set(codes) <= {"OK", refused}, codes
    assert codes["OK"] > 0 and codes[refused] > 0, codes
    # Each refusal says when to come back: gRPC's retry pushback, HTTP's Retry-After.
    assert set(offered.retry_hints) == {"1000" if path == "grpc" else "1"}, offered.retry_hints[:5]
