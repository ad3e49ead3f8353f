"""Shared fixtures: built-in models built once per run, a real Redis, real service processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from protoserve.inference.v1 import inference_service_pb2_grpc

from protoserve_models.builtin.build import build_models
from protoserve_runtime.redis_server import EmbeddedRedis
from tests.harness import ServiceProcess


@pytest.fixture(scope="session")
def model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four built-in models, built by the same code as `protoserve models build`."""
    root = tmp_path_factory.mktemp("models")
    build_models(root)
    return root


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield server.start()
    server.stop()


def start_inference(model_repository: Path, log_dir: Path, **settings: str) -> ServiceProcess:
    env = {
        "PROTOSERVE_MODEL_REPOSITORY": str(model_repository),
        "PROTOSERVE_INFERENCE_METRICS_ADDRESS": "127.0.0.1:0",  # a free port: tests run side by side
        **settings,
    }
    service = ServiceProcess("inference_svc.main", "PROTOSERVE_INFERENCE_ADDRESS", env, log_dir / "inference.log")
    service.start()
    return service


@pytest.fixture(scope="session")
def inference_service(
    model_repository: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    # With Redis, as `protoserve up` runs it: JobService answers and Predict is cached.
    service = start_inference(model_repository, tmp_path_factory.mktemp("inference"), PROTOSERVE_REDIS_URL=redis_url)
    yield service
    service.terminate()


@pytest.fixture(scope="session")
def inference_address(inference_service: ServiceProcess) -> str:
    return inference_service.address


@pytest.fixture(scope="session")
def inference_stub(inference_address: str) -> Iterator[inference_service_pb2_grpc.InferenceServiceStub]:
    with grpc.insecure_channel(inference_address) as channel:
        yield inference_service_pb2_grpc.InferenceServiceStub(channel)
