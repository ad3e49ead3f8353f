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
    pending: set[str] = field(default_factory=set)  # acknowledged, not yet seen final
    lost: list[str] = field(default_factory=list)  # final but not SUCCEEDED with every row, or gone
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, job_id: str) -> None:
        with self.lock:
            self.ids_by_key.setdefault(key, set()).add(job_id)
            self.pending.add(job_id)

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


def check_pending(stub: pb_grpc.JobServiceStub, ledger: JobLedger, metadata: tuple[tuple[str, str], ...]) -> None:
    """One pass over the pending jobs: those now final leave the ledger's pending set.

    Run often (finished jobs expire after PROTOSERVE_JOB_TTL_SECONDS): a job NOT_FOUND once
    acknowledged is lost (its record is gone before anyone saw it finish)."""
    for job_id in sorted(ledger.pending):
        try:
            job = stub.GetJob(pb.GetJobRequest(job_id=job_id, skip_results=True), metadata=metadata, timeout=10).job
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                with ledger.lock:
                    ledger.pending.discard(job_id)
                    ledger.lost.append(job_id)
            continue  # Redis or the replica is down: ask again on the next pass
        if job.state in FINAL:
            with ledger.lock:
                ledger.pending.discard(job_id)
                if job.state != pb.JOB_STATE_SUCCEEDED or job.rows_done != ROWS:
                    ledger.lost.append(job_id)


class Verifier:
    """Checks pending jobs in the background while the load runs, then awaits the rest."""

    def __init__(self, address: str, ledger: JobLedger, metadata: tuple[tuple[str, str], ...]) -> None:
        self.address, self.ledger, self.metadata = address, ledger, metadata
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.JobServiceStub(channel)
            while not self._stop.wait(0.5):
                check_pending(stub, self.ledger, self.metadata)

    def finish(self, timeout: float = 120.0) -> None:
        """Stop the background passes and wait for every pending job; those left are lost."""
        self._stop.set()
        self._thread.join(60)
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.JobServiceStub(channel)
            while self.ledger.pending and time.monotonic() < deadline:
                check_pending(stub, self.ledger, self.metadata)
                time.sleep(0.2)
        with self.ledger.lock:
            self.ledger.lost.extend(sorted(self.ledger.pending))
            self.ledger.pending.clear()
