"""Prediction events: one PredictionEvent per predicted row (and one per failed request) to a Redis
Stream that the monitoring service consumes, published off the request path.

Each stream entry is a PredictionEventBatch holding the events of one flush (event_encoding.py
builds its bytes cheaply from the request's column arrays).

``predictions()`` and ``failure()`` only append to a bounded in-memory buffer; a background task
flushes it to Redis in pipelined batches. When Redis is slow or down, or the buffer is full, events
are dropped and counted (protoserve_prediction_events_dropped_total): a prediction is never slowed
or failed by monitoring. Every call the inference service answers (Predict, ModelInfer, shadow
predictions) publishes through one PredictionEventPublisher per worker process; ``connect()`` builds it
from settings. Job workers publish no events: a job's rows are not live traffic.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge

from inference_svc.event_encoding import encode_failure, encode_predictions
from inference_svc.event_settings import EventSettings
from protoserve_models.card import ModelCard
from protoserve_models.inputs import ServedInputs
from protoserve_models.model import PredictionBatch
from protoserve_runtime.errors import ProtoserveError
from protoserve_runtime.grpc_errors import status_code_for
from protoserve_runtime.redis_settings import RedisSettings

log = logging.getLogger(__name__)

BATCH_FIELD = b"b"  # each stream entry holds one serialized PredictionEventBatch under this field
RETRY_SECONDS = 1.0  # after a failed write, wait this long before talking to Redis again

EVENTS_PUBLISHED = Counter("protoserve_prediction_events_published_total", "Prediction events written to Redis.")
EVENTS_DROPPED = Counter(
    "protoserve_prediction_events_dropped_total",
    "Prediction events dropped instead of published, by reason (buffer_full, redis_error).",
    ["reason"],
)
BUFFER_ROWS = Gauge("protoserve_prediction_event_buffer_rows", "Prediction events waiting to be written to Redis.")


def new_prediction_ids(count: int) -> list[str]:
    """Unique ids for the rows of one request: one random UUID per request, then the row index."""
    base = uuid.uuid4().hex
    return [f"{base}-{i}" for i in range(count)]


@dataclass(frozen=True)
class _Record:
    """One request's worth of events, encoded only when flushed."""

    model: str
    version: str
    time: float
    latency_seconds: float
    rows: int
    card: ModelCard | None = None
    inputs: ServedInputs | None = None
    outputs: PredictionBatch | None = None
    ids: Sequence[str] = ()
    error_code: str = ""

    def encode(self) -> list[bytes]:
        if self.error_code:
            return [encode_failure(self.model, self.version, self.time, self.latency_seconds, self.error_code)]
        assert self.card is not None and self.inputs is not None and self.outputs is not None
        return encode_predictions(
            self.model, self.version, self.time, self.latency_seconds, self.ids, self.inputs,
            self.card.labels, self.outputs.label_indices, self.outputs.values,
        )


class PredictionEventPublisher:
    """A bounded buffer of events and the task that writes it to a Redis Stream in batches."""

    def __init__(
        self,
        client: aioredis.Redis,
        stream: str,
        buffer_rows: int = 50_000,
        batch_rows: int = 1_000,
        flush_seconds: float = 0.05,
        max_stream_length: int = 100_000,
        timeout_seconds: float = 1.0,
    ) -> None:
        self._client = client
        self._stream = stream
        self._buffer: deque[_Record] = deque()
        self._buffered_rows = 0
        self._buffer_rows = buffer_rows
        self._batch_rows = batch_rows
        self._flush_seconds = flush_seconds
        self._max_stream_length = max_stream_length
        self._timeout_seconds = timeout_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # The request path: O(1), never raises, never waits.

    def predictions(
        self, card: ModelCard, inputs: ServedInputs, outputs: PredictionBatch, ids: Sequence[str], latency_seconds: float
    ) -> None:
        self._put(_Record(card.name, card.version, time.time(), latency_seconds, len(ids), card, inputs, outputs, ids))

    def failure(self, model: str, version: str | None, error: ProtoserveError, latency_seconds: float) -> None:
        self._put(_Record(model, version or "", time.time(), latency_seconds, 1, error_code=status_code_for(error).name))

    def _put(self, record: _Record) -> None:
        if self._closing or self._buffered_rows + record.rows > self._buffer_rows:
            EVENTS_DROPPED.labels("buffer_full").inc(record.rows)
            return
        self._buffer.append(record)
        self._buffered_rows += record.rows
        BUFFER_ROWS.set(self._buffered_rows)
        if self._buffered_rows >= self._batch_rows:
            self._wake.set()

    # The background task.

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="prediction-events")

    async def _run(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            if not await self.flush():
                await asyncio.sleep(RETRY_SECONDS)

    def _take_batch(self) -> list[_Record]:
        batch: list[_Record] = []
        rows = 0
        while self._buffer and rows < self._batch_rows:
            record = self._buffer.popleft()
            batch.append(record)
            rows += record.rows
        self._buffered_rows -= rows
        BUFFER_ROWS.set(self._buffered_rows)
        return batch

    async def flush(self) -> bool:
        """Write everything buffered now; False when Redis failed (those events are dropped)."""
        while self._buffer:
            batch = self._take_batch()
            events: list[bytes] = []
            try:
                events = [encoded for record in batch for encoded in record.encode()]
                entry = {BATCH_FIELD: b"".join(events)}
                await asyncio.wait_for(
                    self._client.xadd(self._stream, entry, maxlen=self._max_stream_length, approximate=True),  # type: ignore[arg-type]
                    self._timeout_seconds,
                )
            except Exception as exc:  # Redis down, slow or refusing: monitoring must not hurt predictions
                dropped = sum(record.rows for record in batch)
                EVENTS_DROPPED.labels("redis_error").inc(dropped)
                log.warning("prediction events dropped", extra={"events": dropped, "error": repr(exc)})
                return False
            EVENTS_PUBLISHED.inc(len(events))
        return True

    async def close(self, timeout: float = 2.0) -> None:
        """Stop the task after one last flush (bounded by timeout); what is left is dropped."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except TimeoutError:
            pass
        if self._buffered_rows:
            EVENTS_DROPPED.labels("buffer_full").inc(self._buffered_rows)
        await self._client.aclose()


def connect(redis: RedisSettings, settings: EventSettings) -> PredictionEventPublisher | None:
    """The publisher the settings ask for, or None when events are off or no Redis is configured."""
    url = redis.url
    if not settings.events_enabled or not url:
        log.info("prediction events off", extra={"events_enabled": settings.events_enabled, "redis": bool(url)})
        return None
    client = aioredis.Redis.from_url(
        url, socket_timeout=settings.events_timeout_seconds, socket_connect_timeout=settings.events_timeout_seconds
    )
    return PredictionEventPublisher(
        client,
        redis.events_stream,
        buffer_rows=settings.events_buffer_rows,
        batch_rows=settings.events_batch_rows,
        flush_seconds=settings.events_flush_seconds,
        max_stream_length=settings.events_stream_max_length,
        timeout_seconds=settings.events_timeout_seconds,
    )
