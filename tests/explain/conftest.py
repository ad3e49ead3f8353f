"""The explain service as its own process on an ephemeral port, over the session's model repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from protoserve.explain.v1 import explain_service_pb2_grpc

from tests.harness import ServiceProcess


def start_explain(model_repository: Path, log_dir: Path, **settings: str) -> ServiceProcess:
    env = {
        "PROTOSERVE_MODEL_REPOSITORY": str(model_repository),
        "PROTOSERVE_EXPLAIN_METRICS_ADDRESS": "127.0.0.1:0",  # a free port: tests run side by side
        **settings,
    }
    service = ServiceProcess("explain_svc.main", "PROTOSERVE_EXPLAIN_ADDRESS", env, log_dir / "explain.log")
    service.start()
    return service


@pytest.fixture(scope="session")
def explain_service(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = start_explain(model_repository, tmp_path_factory.mktemp("explain"))
    yield service
    service.terminate()


@pytest.fixture(scope="session")
def explain_address(explain_service: ServiceProcess) -> str:
    return explain_service.address


@pytest.fixture(scope="session")
def explain_stub(explain_address: str) -> Iterator[explain_service_pb2_grpc.ExplainServiceStub]:
    with grpc.insecure_channel(explain_address) as channel:
        yield explain_service_pb2_grpc.ExplainServiceStub(channel)
