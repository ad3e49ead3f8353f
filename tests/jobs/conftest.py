"""Fixtures of the job tests: an inference service and job workers on their own Redis key prefix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from protoserve.inference.v1 import inference_service_pb2_grpc
from protoserve.jobs.v1 import job_service_pb2_grpc

from tests.harness import ServiceProcess
from tests.jobs.harness import WorkerProcess, channel, redis_env, start_service


@pytest.fixture(scope="module")
def jobs_env(redis_url: str) -> dict[str, str]:
    # Several batches and pages per 10,000-row job; a small row limit to test it cheaply.
    return redis_env(redis_url, PROTOSERVE_JOB_BATCH_SIZE="2000", PROTOSERVE_JOB_PAGE_SIZE="500",
                     PROTOSERVE_JOB_MAX_ROWS="20000", PROTOSERVE_JOB_MAX_PAYLOAD_BYTES=str(4 << 20))


@pytest.fixture(scope="module")
def jobs_service(
    model_repository: Path, jobs_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    service = start_service(model_repository, tmp_path_factory.mktemp("jobs-service"), jobs_env)
    yield service
    service.terminate()


@pytest.fixture(scope="module")
def job_workers(
    model_repository: Path, jobs_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[WorkerProcess]]:
    log_dir = tmp_path_factory.mktemp("job-workers")
    workers = [WorkerProcess(model_repository, jobs_env, log_dir / f"worker-{i}.log") for i in range(2)]
    yield workers
    for worker in workers:
        worker.stop()


@pytest.fixture(scope="module")
def grpc_channel(jobs_service: ServiceProcess) -> Iterator[grpc.Channel]:
    yield from channel(jobs_service.address)


@pytest.fixture(scope="module")
def job_stub(grpc_channel: grpc.Channel) -> job_service_pb2_grpc.JobServiceStub:
    return job_service_pb2_grpc.JobServiceStub(grpc_channel)


@pytest.fixture(scope="module")
def predict_stub(grpc_channel: grpc.Channel) -> inference_service_pb2_grpc.InferenceServiceStub:
    return inference_service_pb2_grpc.InferenceServiceStub(grpc_channel)
