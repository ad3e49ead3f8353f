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


def test_excess_grpc_calls_get_resource_exhausted_not_timeouts(small_queue: tuple[ServiceProcess, GatewayProcess]) -> None:
    replica, _ = small_queue
    sustainable = asyncio.run(capacity(replica.address, seconds=3, concurrency=2))
    offered = asyncio.run(offer_grpc(replica.address, rate=max(8.0, sustainable * 4), seconds=3))
    codes = offered.codes()
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
    assert codes["OK"] > 0 and codes["RESOURCE_EXHAUSTED"] > 0, codes


def test_excess_http_calls_get_429_not_timeouts(small_queue: tuple[ServiceProcess, GatewayProcess]) -> None:
    replica, gateway = small_queue
    sustainable = asyncio.run(capacity(replica.address, seconds=3, concurrency=2))
    offered = asyncio.run(offer_http(gateway.url, rate=max(8.0, sustainable * 4), seconds=3))
    codes = offered.codes()
    assert set(codes) <= {"OK", "429"}, codes
    assert codes["OK"] > 0 and codes["429"] > 0, codes
