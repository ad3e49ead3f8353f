"""The transport-free job core of the service: submit, read, list, cancel and watch jobs in Redis.

Submitting validates the rows against the model card here, in the service, so that a job a
worker takes can only fail for reasons of the worker; the validated array is queued with the job.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import redis
import redis.asyncio

from inference_svc.core import InferenceCore, PredictResult
from protoserve_models.batch_codec import decode_batch, encode_arrays
from protoserve_models.inputs import InputLimits
from protoserve_models.jobs import scripts
from protoserve_models.jobs.payload import PayloadFormat, job_inputs
from protoserve_models.jobs.record import JobKeys, JobRecord
from protoserve_models.jobs.settings import JobSettings
from protoserve_runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable

log = logging.getLogger(__name__)
WATCH_POLL_SECONDS = 0.2
MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True)
class Submission:
    model: str
    version: str | None
    rows: Sequence[Mapping[str, Any]]
    payload: bytes
    payload_format: PayloadFormat | None
    idempotency_key: str


@dataclass(frozen=True)
class ResultPage:
    first_row: int
    result: PredictResult | None
    next_page: int | None


P = ParamSpec("P")
R = TypeVar("R")


def _redis_unavailable(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Redis that cannot be reached (after the client's retries) is UNAVAILABLE, not a bug."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            log.warning("Redis unreachable", extra={"error": repr(exc)})
            raise Unavailable("the job store (Redis) cannot be reached; retry later") from exc

    return wrapper


def check_idempotency_key(key: str) -> str:
    if len(key) > MAX_IDEMPOTENCY_KEY or any(c.isspace() for c in key):
        raise InvalidArgument.for_field("idempotency_key", f"at most {MAX_IDEMPOTENCY_KEY} characters, no spaces")
    return key


def _check_job_id(job_id: str) -> str:
    if not job_id:
        raise InvalidArgument.for_field("job_id", "is required")
    if len(job_id) > 64 or not job_id.isalnum():
        raise NotFound(f"job {job_id!r} not found")
    return job_id


def no_traceparent() -> str:
    return ""


class JobCore:
    def __init__(
        self, inference: InferenceCore, client: redis.asyncio.Redis | None, keys: JobKeys, settings: JobSettings,
        traceparent: Callable[[], str] = no_traceparent,
    ) -> None:
        """traceparent: the submitting call's W3C traceparent, kept with the job (its workers' spans link to it)."""
        self._inference = inference
        self._traceparent = traceparent
        self._client = client
        self.keys = keys
        self.settings = settings
        self._limits = InputLimits(max_rows=settings.job_max_rows, max_text_length=inference.limits.max_text_length)
        self._waitaof: bool | None = None

    @property
    def client(self) -> redis.asyncio.Redis:
        if self._client is None:
            raise Unavailable("jobs need Redis: set PROTOSERVE_REDIS_URL (protoserve up does)")
        return self._client

    @_redis_unavailable
    async def submit(self, submission: Submission) -> JobRecord:
        key = check_idempotency_key(submission.idempotency_key)
        model = self._inference.resolve(submission.model, submission.version)
        inputs = await asyncio.to_thread(
            job_inputs, model.card, submission.rows, submission.payload, submission.payload_format,
            self._limits, self.settings.job_max_payload_bytes,
        )
        blob = encode_arrays({"inputs": inputs})
        fingerprint = hashlib.sha256(f"{model.name}\0{model.version}\0".encode() + blob).hexdigest()
        job_id = uuid.uuid4().hex
        now = time.time()
        fields = {
            "id": job_id, "model": model.name, "version": model.version, "state": "QUEUED",
            "rows_total": len(inputs), "rows_done": 0, "created": now, "attempts": 0, "idem": key,
            "page_size": self.settings.job_page_size, "pages": 0,
        }
        return await self.enqueue(fields, blob, fingerprint)

    @_redis_unavailable
    async def enqueue(self, fields: dict[str, Any], blob: bytes, fingerprint: str) -> JobRecord:
        """Queue a job durably (any kind: predictions, a training run); the job as accepted, or the
        earlier job when its idempotency key was used before for the same request."""
        job_id, key, now = str(fields["id"]), str(fields["idem"]), float(fields["created"])
        parent = self._traceparent()
        if parent:
            fields = {**fields, "traceparent": parent}
        flat = [str(item) for pair in fields.items() for item in pair]
        created, value = await self.client.eval(  # type: ignore[misc]
            scripts.SUBMIT, 5,
            self.keys.record(job_id), self.keys.input(job_id), self.keys.stream, self.keys.index,
            self.keys.idempotency(key or "-"),
            job_id, blob, now, "1" if key else "0", fingerprint, *flat,
        )
        if not created:
            existing_id, existing_fingerprint = value.decode().split(" ")
            if existing_fingerprint != fingerprint:
                raise InvalidArgument.for_field(
                    "idempotency_key", f"was used for a different request (job {existing_id})"
                )
            return await self.get(existing_id)
        await self._wait_durable()
        return JobRecord.from_hash({k.encode(): str(v).encode() for k, v in fields.items()})  # as accepted

    async def _wait_durable(self) -> None:
        """Wait for the AOF fsync where the server can say so (WAITAOF, Redis 7.2+).

        Redis writes the AOF before it answers, so a crash of the Redis process alone loses
        nothing that was answered; WAITAOF also covers a crash of the whole machine.
        """
        if self._waitaof is None:
            info = await self.client.info("server")
            major, minor = (int(part) for part in str(info.get("redis_version", "0.0")).split(".")[:2])
            self._waitaof = (major, minor) >= (7, 2)
        if self._waitaof:
            await self.client.execute_command("WAITAOF", 1, 0, 2000)

    @_redis_unavailable
    async def get(self, job_id: str) -> JobRecord:
        data: Any = await self.client.hgetall(self.keys.record(_check_job_id(job_id)))  # type: ignore[misc]
        if not data:
            raise NotFound(f"job {job_id!r} not found (finished jobs are kept {self.settings.job_ttl_seconds} s)")
        return JobRecord.from_hash(data)

    @_redis_unavailable
    async def results(self, record: JobRecord, page: int) -> ResultPage:
        if record.state != "SUCCEEDED" or record.pages == 0:
            return ResultPage(0, None, None)
        if not 0 <= page < record.pages:
            raise InvalidArgument.for_field("results_page_token", f"no such page; the job has {record.pages} pages")
        blob: Any = await self.client.get(self.keys.page(record.job_id, record.run, page))
        if blob is None:
            raise NotFound(f"the results of job {record.job_id!r} have expired")
        card = self._inference.resolve(record.model, record.version).card
        next_page = page + 1 if page + 1 < record.pages else None
        return ResultPage(page * record.page_size, PredictResult(card, decode_batch(blob)), next_page)

    @_redis_unavailable
    async def list(self, page_size: int, offset: int) -> tuple[list[JobRecord], int | None]:
        page_size = min(page_size or 50, 1000)
        ids: Any = await self.client.zrevrange(self.keys.index, offset, offset + page_size - 1)
        if not ids:
            return [], None
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self.keys.record(job_id.decode()))
        records, expired = [], []
        for job_id, data in zip(ids, await pipe.execute()):
            if data:
                records.append(JobRecord.from_hash(data))
            else:
                expired.append(job_id)
        if expired:  # records expire on their own; their index entries are dropped when seen
            await self.client.zrem(self.keys.index, *expired)
        more = len(ids) == page_size
        return records, (offset + page_size - len(expired)) if more else None

    @_redis_unavailable
    async def cancel(self, job_id: str) -> JobRecord:
        outcome = await self.client.eval(  # type: ignore[misc]
            scripts.CANCEL, 5,
            self.keys.record(_check_job_id(job_id)), self.keys.input(job_id), self.keys.stream,
            self.keys.events, self.keys.dead_letter,
            self.keys.group, "", "", time.time(), self.settings.job_ttl_seconds, self.keys.idempotency(""),
        )
        outcome = outcome.decode()
        if outcome == "missing":
            raise NotFound(f"job {job_id!r} not found")
        if outcome != "ok":
            raise FailedPrecondition(
                f"job {job_id!r} has already finished ({outcome}); only a queued or running job can be cancelled"
            )
        return await self.get(job_id)

    async def watch(self, job_id: str) -> AsyncIterator[JobRecord]:
        """The job now, then each time it changes, until (and including) a final state."""
        last: tuple[object, ...] | None = None
        while True:
            record = await self.get(job_id)
            seen = (record.state, record.rows_done, record.attempts)
            if seen != last:
                last = seen
                yield record
            if record.state.final:
                return
            await asyncio.sleep(WATCH_POLL_SECONDS)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
