"""A job worker: one process that takes jobs from the Redis Stream and predicts them in batches.

It reads with the consumer group (XREADGROUP), first reclaiming any job whose worker went quiet
for the visibility timeout (XAUTOCLAIM). Each batch's results are written as pages of this run,
then progress is recorded (which also renews the claim); the job is completed and the message
acknowledged last, in one script that only succeeds while this run still owns the job. The
model runs through the model package's repository and loaded model, the same code the inference
service predicts with: no second copy of model logic.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import redis

from protoserve_models.batch_codec import decode_arrays, encode_batch
from protoserve_models.jobs import scripts
from protoserve_models.jobs.payload import batches
from protoserve_models.jobs.record import JobKeys, JobRecord
from protoserve_models.jobs.settings import JobSettings
from protoserve_models.model import LoadedModel
from protoserve_models.repository import ModelRepository
from protoserve_models.training.engine import RunStopped
from protoserve_runtime.errors import NotFound, ProtoserveError
from worker_svc.training_runner import TrainingRunner, run_fields

log = logging.getLogger(__name__)
READ_BLOCK_MS = 1000


class JobSpans(Protocol):
    """Spans of a job's run and of each batch it predicts (worker_svc/traced.py when tracing is on)."""

    def job(self, record: JobRecord) -> AbstractContextManager[object]: ...

    def batch(self, record: JobRecord, rows: int) -> AbstractContextManager[object]: ...


class NoSpans:
    def job(self, record: JobRecord) -> AbstractContextManager[object]:
        return nullcontext()

    def batch(self, record: JobRecord, rows: int) -> AbstractContextManager[object]:
        return nullcontext()


def ensure_group(client: redis.Redis, keys: JobKeys) -> None:
    try:  # from id 0: jobs queued before any worker existed are read too
        client.xgroup_create(keys.stream, keys.group, id="0", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class Worker:
    def __init__(
        self, repository: ModelRepository, client: redis.Redis, keys: JobKeys, settings: JobSettings, consumer: str,
        training: TrainingRunner | None = None, spans: JobSpans | None = None,
    ) -> None:
        self.repository = repository
        self.spans = spans or NoSpans()
        self.client = client
        self.keys = keys
        self.settings = settings
        self.consumer = consumer
        self.training = training  # runs the jobs of kind "train"
        self.stop = threading.Event()
        self._claim = client.register_script(scripts.CLAIM)
        self._progress = client.register_script(scripts.PROGRESS)
        self._finish = client.register_script(scripts.FINISH)
        self._release = client.register_script(scripts.RELEASE)
        self._autoclaim_cursor = "0-0"
        self._written = 0  # result pages written by the current run

    def run(self) -> None:
        log.info("worker ready", extra={"consumer": self.consumer, "stream": self.keys.stream})
        while not self.stop.is_set():
            try:
                message = self.next_message()
                if message is not None:
                    self.process(*message)
            except redis.exceptions.ConnectionError as exc:
                log.warning("Redis unreachable; retrying", extra={"error": repr(exc)})
                self.stop.wait(1.0)
            except redis.exceptions.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                ensure_group(self.client, self.keys)  # the stream was lost (a Redis without AOF)
            except Exception:  # a bug must not stop the worker; the job stays pending and is retried
                log.exception("worker loop error")
                self.stop.wait(1.0)
        log.info("worker stopped", extra={"consumer": self.consumer})

    def next_message(self) -> tuple[str, str] | None:
        """(message id, job id): a job left by a silent worker first, else a new one."""
        min_idle = int(self.settings.job_visibility_timeout_seconds * 1000)
        reply = self.client.xautoclaim(
            self.keys.stream, self.keys.group, self.consumer, min_idle, start_id=self._autoclaim_cursor, count=1
        )
        self._autoclaim_cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        entries = reply[1]
        if not entries:
            read: Any = self.client.xreadgroup(
                self.keys.group, self.consumer, {self.keys.stream: ">"}, count=1, block=READ_BLOCK_MS
            )
            entries = read[0][1] if read else []
        else:
            log.info("reclaimed a job from a silent worker", extra={"stream_message": entries[0][0]})
        for message_id, fields in entries:
            msg = message_id.decode()
            if not fields:  # deleted under us: nothing to do but drop it from the pending list
                self.client.xack(self.keys.stream, self.keys.group, msg)
                continue
            return msg, fields[b"job"].decode()
        return None

    def _call(self, script: Any, job_id: str, msg: str, token: str, *extra: object, client: Any = None) -> Any:
        keys = [self.keys.record(job_id), self.keys.input(job_id), self.keys.stream, self.keys.events, self.keys.dead_letter]
        args = [self.keys.group, msg, token, time.time(), self.settings.job_ttl_seconds, self.keys.idempotency(""), *extra]
        return script(keys=keys, args=args, client=client)

    def process(self, msg: str, job_id: str) -> None:
        token = uuid.uuid4().hex
        outcome = self._call(self._claim, job_id, msg, token, self.consumer, self.settings.job_max_attempts).decode()
        if outcome != "ok":
            log.info("job not run", extra={"job": job_id, "reason": outcome})
            return
        record = JobRecord.from_hash(self.client.hgetall(self.keys.record(job_id)))  # type: ignore[arg-type]
        log.info("job started", extra={"job": job_id, "model": record.model, "version": record.version,
                                       "rows": record.rows_total, "attempt": record.attempts})
        self._written = 0
        try:
            with self.spans.job(record):
                if record.kind == "train":
                    self._train(record, msg, token)
                else:
                    self._predict(record, msg, token)
        except ProtoserveError as exc:  # the job cannot succeed: no retry
            self._drop_pages(job_id, token, self._written)
            self._call(self._release, job_id, msg, token, "fail", exc.message, self.settings.job_max_attempts)
            log.warning("job failed", extra={"job": job_id, "error": exc.message})
        except redis.exceptions.ConnectionError:
            raise  # the message stays pending; it is reclaimed after the visibility timeout
        except Exception as exc:
            log.exception("job attempt failed", extra={"job": job_id})
            self._drop_pages(job_id, token, self._written)
            self._call(self._release, job_id, msg, token, "retry", f"{type(exc).__name__}: {exc}", self.settings.job_max_attempts)

    def _predict(self, record: JobRecord, msg: str, token: str) -> None:
        """Run the job, counting the result pages written in self._written."""
        model = self._model(record.model, record.version)
        blob = self.client.get(self.keys.input(record.job_id))
        if blob is None:
            raise NotFound(f"the input of job {record.job_id} is gone")
        inputs = decode_arrays(blob)["inputs"]  # type: ignore[arg-type]
        page_size = record.page_size
        pages = 0
        for start, stop in batches(len(inputs), self.settings.job_batch_size):
            if self.stop.is_set():  # asked to stop: hand the job back, not counted as an attempt
                self._drop_pages(record.job_id, token, pages)
                self._call(self._release, record.job_id, msg, token, "shutdown", "", self.settings.job_max_attempts)
                log.info("job handed back on shutdown", extra={"job": record.job_id})
                return
            with self.spans.batch(record, stop - start):
                outputs = model.predict(inputs[start:stop])
            pipe = self.client.pipeline(transaction=False)
            for offset in range(0, len(outputs), page_size):
                page = encode_batch(outputs.take(offset, offset + page_size))
                pipe.set(self.keys.page(record.job_id, token, pages), page, ex=self.settings.job_ttl_seconds)
                pages += 1
            self._written = pages
            self._call(self._progress, record.job_id, msg, token, stop, self.consumer, client=pipe)
            outcome = pipe.execute()[-1].decode()
            if outcome != "ok":  # cancelled, or another run owns the job now
                self._drop_pages(record.job_id, token, pages)
                log.info("job stopped", extra={"job": record.job_id, "reason": "cancelled" if outcome == "stop" else outcome})
                return
        if self._call(self._finish, record.job_id, msg, token, pages):
            log.info("job succeeded", extra={"job": record.job_id, "rows": len(inputs)})
        else:
            self._drop_pages(record.job_id, token, pages)

    def _train(self, record: JobRecord, msg: str, token: str) -> None:
        """A training run: a new model version, its run stored on the record, then the job completed."""
        if self.training is None:
            raise NotFound("this worker cannot run training jobs")
        spec = self.client.get(self.keys.input(record.job_id))
        if spec is None:
            raise NotFound(f"the request of training run {record.job_id} is gone")

        def report(steps: int) -> bool:
            outcome = self._call(self._progress, record.job_id, msg, token, steps, self.consumer)
            return bool(outcome.decode() == "ok")

        try:
            run = self.training.run(spec, report, self.stop)  # type: ignore[arg-type]
        except RunStopped:
            if self.stop.is_set():  # hand the run back, not counted as an attempt
                self._call(self._release, record.job_id, msg, token, "shutdown", "", self.settings.job_max_attempts)
            log.info("training run stopped", extra={"job": record.job_id})
            return
        self.client.hset(self.keys.record(record.job_id), mapping=run_fields(run))  # type: ignore[arg-type]
        if self._call(self._finish, record.job_id, msg, token, 0):
            log.info("training run succeeded", extra={"job": record.job_id, "version": run.get("version")})

    def _model(self, name: str, version: str) -> LoadedModel:
        try:
            return self.repository.get(name, version)
        except NotFound:  # a version added after this worker started
            self.repository.load(name, version)
            return self.repository.get(name, version)

    def _drop_pages(self, job_id: str, token: str, pages: int) -> None:
        if pages:
            self.client.delete(*(self.keys.page(job_id, token, page) for page in range(pages)))
