"""Job tests' helpers: worker processes, a service wired to a Redis, rows for each built-in model."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from protoserve.jobs.v1 import job_service_pb2 as pb
from protoserve.jobs.v1 import job_service_pb2_grpc as pb_grpc

from protoserve_models.card import ModelCard
from tests.harness import REPO_ROOT, ServiceProcess

FINAL = {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED}


def redis_env(redis_url: str, **settings: str) -> dict[str, str]:
    """Settings for a service or worker on its own key prefix, so tests sharing a Redis never meet."""
    return {"PROTOSERVE_REDIS_URL": redis_url, "PROTOSERVE_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:12]}", **settings}


class WorkerProcess:
    """One `protoserve worker` process, as `protoserve up` starts it."""

    def __init__(self, model_repository: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        full_env = {**os.environ, "PROTOSERVE_MODEL_REPOSITORY": str(model_repository), **env}
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("protoserve")), "worker"],
                env=full_env, stdout=log, stderr=log, cwd=REPO_ROOT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_service(model_repository: Path, log_dir: Path, env: Mapping[str, str]) -> ServiceProcess:
    service = ServiceProcess(
        "inference_svc.main", "PROTOSERVE_INFERENCE_ADDRESS",
        {"PROTOSERVE_MODEL_REPOSITORY": str(model_repository), **env}, log_dir / "inference.log",
    )
    service.start()
    return service


def sample_rows(model_repository: Path, model: str, count: int) -> list[dict[str, Any]]:
    """count valid rows for a built-in model, drawn from its card's reference sample and varied."""
    card = ModelCard.read(model_repository / model / "1")
    sample = card.reference_sample
    size = len(next(iter(sample.values())))
    rows = []
    for i in range(count):
        row: dict[str, Any] = {}
        for feature in card.inputs:
            value = sample[feature.name][i % size]
            row[feature.name] = value if feature.type == "string" else float(value) * (1 + (i // size) * 1e-3)
        rows.append(row)
    return rows


def csv_payload(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def structs(rows: list[dict[str, Any]]) -> list[struct_pb2.Struct]:
    out = []
    for row in rows:
        struct = struct_pb2.Struct()
        struct.update(row)
        out.append(struct)
    return out


def wait_final(stub: pb_grpc.JobServiceStub, job_id: str, timeout: float = 240.0) -> pb.Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stub.GetJob(pb.GetJobRequest(job_id=job_id, skip_results=True), timeout=10).job
        if job.state in FINAL:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def all_results(stub: pb_grpc.JobServiceStub, job_id: str) -> list[Any]:
    predictions: list[Any] = []
    token = ""
    while True:
        response = stub.GetJob(pb.GetJobRequest(job_id=job_id, results_page_token=token), timeout=30)
        assert response.first_row == len(predictions)
        predictions.extend(response.predictions)
        token = response.next_results_page_token
        if not token:
            return predictions


def channel(address: str) -> Iterator[grpc.Channel]:
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    with grpc.insecure_channel(address, options=options) as ch:
        yield ch
