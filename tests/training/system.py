"""A system for training tests: its own copy of the model repository (runs add versions), an
inference service, one job worker, optionally the monitoring service, on one Redis key prefix."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from protoserve.inference.v1 import inference_service_pb2_grpc
from protoserve.models.v1 import model_service_pb2 as pb
from protoserve.models.v1 import model_service_pb2_grpc

from protoserve_runtime.redis_server import free_port
from tests.conftest import start_inference
from tests.harness import ServiceProcess
from tests.jobs.harness import WorkerProcess
from tests.monitoring.system import start_monitoring

FINAL = {pb.TRAINING_RUN_STATE_SUCCEEDED, pb.TRAINING_RUN_STATE_FAILED}


def system_env(redis_url: str, **settings: str) -> dict[str, str]:
    """Every key, stream and prefix unique to this system, so tests sharing a Redis never meet."""
    tag = uuid.uuid4().hex[:12]
    return {
        "PROTOSERVE_REDIS_URL": redis_url,
        "PROTOSERVE_REDIS_PREFIX": f"test-{tag}",
        "PROTOSERVE_EVENTS_STREAM": f"test-{tag}:prediction-events",
        "PROTOSERVE_MONITORING_KEY_PREFIX": f"test-{tag}:monitoring",
        "PROTOSERVE_LABELED_EXAMPLES_STREAM": f"test-{tag}:labeled-examples",
        "PROTOSERVE_REPOSITORY_POLL_SECONDS": "0.2",
        "PROTOSERVE_EVENTS_FLUSH_SECONDS": "0.02",
        **settings,
    }


@dataclass
class TrainingSystem:
    repository: Path
    env: dict[str, str]
    inference: ServiceProcess
    worker: WorkerProcess
    monitoring: ServiceProcess | None = None
    _channels: list[grpc.Channel] = field(default_factory=list)

    def channel(self, address: str) -> grpc.Channel:
        channel = grpc.insecure_channel(address)
        self._channels.append(channel)
        return channel

    @property
    def models(self) -> model_service_pb2_grpc.ModelServiceStub:
        return model_service_pb2_grpc.ModelServiceStub(self.channel(self.inference.address))

    @property
    def predict(self) -> inference_service_pb2_grpc.InferenceServiceStub:
        return inference_service_pb2_grpc.InferenceServiceStub(self.channel(self.inference.address))

    def stop(self) -> None:
        for channel in self._channels:
            channel.close()
        self.worker.stop()
        self.inference.terminate()
        if self.monitoring is not None:
            self.monitoring.terminate()


def start_system(source_repository: Path, log_dir: Path, redis_url: str, monitoring: bool = False,
                 **settings: str) -> TrainingSystem:
    repository = log_dir / "models"
    shutil.copytree(source_repository, repository)
    env = system_env(redis_url, **settings)
    inference = start_inference(repository, log_dir, PROTOSERVE_INFERENCE_WORKERS="1", **env)
    worker = WorkerProcess(repository, env, log_dir / "worker.log")
    watcher = None
    if monitoring:
        watcher = start_monitoring(repository, log_dir, redis_url, **{
            k: v for k, v in env.items() if k != "PROTOSERVE_REDIS_URL"
        }, PROTOSERVE_MONITORING_METRICS_ADDRESS=f"127.0.0.1:{free_port()}")
    return TrainingSystem(repository, env, inference, worker, watcher)


def train_request(model: str, recipe: str = "", parameters: dict[str, Any] | None = None, *, builtin: bool = False,
                  csv: bytes = b"", label_column: str = "", feedback: bool = False,
                  promotion: int = pb.PROMOTION_MODE_AUTO, idempotency_key: str = "") -> pb.TrainModelRequest:
    params = struct_pb2.Struct()
    params.update(parameters or {})
    return pb.TrainModelRequest(
        model=model, recipe=recipe, parameters=params, promotion=promotion, idempotency_key=idempotency_key,
        data=pb.TrainingData(builtin=builtin, csv=csv, label_column=label_column, feedback=feedback),
    )


def wait_run(stub: model_service_pb2_grpc.ModelServiceStub, run_id: str, timeout: float = 600.0) -> pb.TrainingRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stub.GetTrainingRun(pb.GetTrainingRunRequest(run_id=run_id), timeout=10).run
        if run.state in FINAL:
            return run
        time.sleep(0.2)
    raise AssertionError(f"training run {run_id} did not finish in {timeout} s")


def system_fixture(source_repository: Path, log_dir: Path, redis_url: str, **kwargs: Any) -> Iterator[TrainingSystem]:
    system = start_system(source_repository, log_dir, redis_url, **kwargs)
    try:
        yield system
    finally:
        system.stop()
