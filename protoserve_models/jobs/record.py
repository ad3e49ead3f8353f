"""The job record: one Redis hash per job, read the same way by the service and the workers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobKeys:
    """Every Redis key of the job system, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.stream = f"{prefix}:jobs:queue"
        self.group = "workers"
        self.index = f"{prefix}:jobs:index"  # sorted set: job id by creation time
        self.events = f"{prefix}:jobs:events"  # stream: one entry per job reaching a final state
        self.dead_letter = f"{prefix}:jobs:dead-letter"  # stream: jobs that failed, with the reason

    def record(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def input(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:input"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}:jobs:idempotency:{key}"

    def page(self, job_id: str, run: str, page: int) -> str:
        """A result page of one run (attempt); the record names the run whose pages count."""
        return f"{self.prefix}:job:{job_id}:run:{run}:page:{page}"


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    model: str
    version: str
    state: JobState
    rows_total: int
    rows_done: int
    created: float
    started: float
    finished: float
    error: str
    attempts: int
    idempotency_key: str
    pages: int
    page_size: int
    run: str  # the run whose result pages are the results, once SUCCEEDED
    worker: str
    kind: str = ""  # "" for a prediction job, "train" for a training run (inference_svc/training)
    training: str = ""  # a training run: the run as JSON (inference_svc/training/record.py)
    traceparent: str = ""  # W3C traceparent of the call that submitted the job, when tracing was on

    @classmethod
    def from_hash(cls, data: dict[bytes, bytes]) -> JobRecord:
        def text(name: str) -> str:
            return data.get(name.encode(), b"").decode()

        def number(name: str) -> float:
            raw = data.get(name.encode())
            return float(raw) if raw else 0.0

        return cls(
            job_id=text("id"),
            model=text("model"),
            version=text("version"),
            state=JobState(text("state")),
            rows_total=int(number("rows_total")),
            rows_done=int(number("rows_done")),
            created=number("created"),
            started=number("started"),
            finished=number("finished"),
            error=text("error"),
            attempts=int(number("attempts")),
            idempotency_key=text("idem"),
            pages=int(number("pages")),
            page_size=int(number("page_size")),
            run=text("run"),
            worker=text("worker"),
            kind=text("kind"),
            training=text("training"),
            traceparent=text("traceparent"),
        )
