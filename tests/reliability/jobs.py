"""Jobs under load and faults: every job the service acknowledged must finish exactly once.

A client submits small batch jobs with an idempotency key and, when a call fails, retries with
the same key on the next replica (as a careful client does). The ledger keeps every job id each
key was answered with; at the end every acknowledged job is awaited. Lost: acknowledged and never
SUCCEEDED with all its rows. Duplicated: a key answered with more than one job id.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import grpc
from protoserve.jobs.v1 import job_service_pb2 as pb
from protoserve.jobs.v1 import job_service_pb2_grpc as pb_grpc

ROWS = 5
FINAL = {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED}


@dataclass
class JobLedger:
    ids_by_key: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, job_id: str) -> None:
        with self.lock:
            self.ids_by_key.setdefault(key, set()).add(job_id)

    @property
    def acknowledged(self) -> int:
        return len(self.ids_by_key)

    def duplicated(self) -> int:
        return sum(len(ids) - 1 for ids in self.ids_by_key.values())


def submit(stubs: list[pb_grpc.JobServiceStub], ledger: JobLedger, rows: list[dict[str, float]],
           metadata: tuple[tuple[str, str], ...], attempts: int = 20) -> str:
    """Submit one job, retrying with the same key; the first failure's code, or OK."""
    key = uuid.uuid4().hex
    request = pb.SubmitJobRequest(model="iris-knn", idempotency_key=key)
    for row in rows:
        request.rows.add().update(row)
    first_failure = ""
    for attempt in range(attempts):
        try:
            job = stubs[attempt % len(stubs)].SubmitJob(request, metadata=metadata, timeout=30).job
        except grpc.RpcError as exc:
            first_failure = first_failure or exc.code().name  # type: ignore[attr-defined]
            time.sleep(0.5)
            continue
        ledger.add(key, job.job_id)
        return first_failure or "OK"
    return first_failure


def lost_jobs(stub: pb_grpc.JobServiceStub, ledger: JobLedger, metadata: tuple[tuple[str, str], ...],
              timeout: float = 120.0) -> int:
    """Acknowledged jobs that do not SUCCEED with every row within ``timeout`` (from now)."""
    deadline = time.monotonic() + timeout
    lost = 0
    for ids in list(ledger.ids_by_key.values()):
        for job_id in ids:
            while True:
                try:
                    job = stub.GetJob(pb.GetJobRequest(job_id=job_id, skip_results=True), metadata=metadata,
                                      timeout=10).job
                except grpc.RpcError:
                    job = None
                if job is not None and job.state in FINAL:
                    lost += job.state != pb.JOB_STATE_SUCCEEDED or job.rows_done != ROWS
                    break
                if time.monotonic() > deadline:
                    lost += 1
                    break
                time.sleep(0.2)
    return lost
