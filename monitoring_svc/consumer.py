"""The prediction-event consumer: reads the stream in a consumer group and applies each batch to the
Redis state together with its acknowledgement, in one MULTI/EXEC.

Replicas in the same group share the events. A batch is counted exactly when it is acknowledged,
so a replica that stops (or dies) before EXEC leaves its batch pending: on restart under the same
consumer name it reads its own pending events first, and other replicas take over events left
pending longer than the claim idle time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from google.protobuf.message import DecodeError
from prometheus_client import Counter
from protoserve.monitoring.v1 import prediction_event_pb2 as event_pb
from redis.exceptions import RedisError, ResponseError

from monitoring_svc.aggregates import PREDICTION_SLOT_SECONDS, BatchAggregate, Keys, RedisClient, Window, write_increments
from monitoring_svc.labeled_examples import LabeledExamples
from monitoring_svc.profiles import ProfileStore

log = logging.getLogger(__name__)

BATCH_FIELD = b"b"  # the serialized PredictionEventBatch of an entry
EVENTS_CONSUMED = Counter("protoserve_monitoring_events_consumed_total", "Prediction events applied to the monitoring state.")
EVENTS_MALFORMED = Counter(
    "protoserve_monitoring_events_malformed_total", "Stream entries that were not PredictionEventBatches (acknowledged, skipped)."
)

Entry = tuple[bytes, dict[bytes, bytes] | None]


class EventConsumer:
    def __init__(
        self,
        client: RedisClient,
        stream: str,
        group: str,
        consumer: str,
        keys: Keys,
        windows: list[Window],
        profiles: ProfileStore,
        batch_entries: int = 10,
        claim_idle_seconds: float = 60.0,
        feedback_ttl_seconds: int = 7 * 86400,
        examples: LabeledExamples | None = None,
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.keys = keys
        self.windows = windows
        self.profiles = profiles
        self.batch_entries = batch_entries
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self.feedback_ttl_seconds = feedback_ttl_seconds
        self.examples = examples  # keeps the inputs of logged predictions for labeled examples

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read(self, start: str, block_ms: int | None) -> list[Entry]:
        response = await self.client.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=self.batch_entries, block=block_ms
        )
        return list(response[0][1]) if response else []

    async def drain_pending(self) -> int:
        """Apply the events this consumer read before it stopped but never acknowledged."""
        applied = 0
        while entries := await self._read("0", None):
            applied += await self.apply(entries)
        return applied

    async def claim_abandoned(self) -> int:
        """Take over events another replica read and left unacknowledged for too long."""
        result = await self.client.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, start_id="0-0", count=self.batch_entries
        )
        entries = result[1] if len(result) > 1 else []
        return await self.apply(entries) if entries else 0

    async def step(self, block_ms: int = 1000) -> int:
        entries = await self._read(">", block_ms)
        return await self.apply(entries) if entries else 0

    async def apply(self, entries: list[Entry]) -> int:
        """Count a batch of stream entries and acknowledge them, all at once; returns the events."""
        aggregate = BatchAggregate(self.windows, self.keys, self.profiles)
        ids = []
        malformed = events = 0
        kept_inputs: dict[int, dict[str, bytes]] = {}
        for entry_id, fields in entries:
            ids.append(entry_id)
            try:
                batch = event_pb.PredictionEventBatch.FromString((fields or {})[BATCH_FIELD])
            except (KeyError, DecodeError):
                malformed += 1
                continue
            for event in batch.events:
                aggregate.add(event)
            if self.examples is not None:
                for slot, kept in self.examples.collect(batch.events).items():
                    kept_inputs.setdefault(slot, {}).update(kept)
            events += len(batch.events)
        increments = aggregate.increments()
        async with self.client.pipeline(transaction=True) as pipe:
            write_increments(pipe, increments)
            for slot, records in aggregate.predictions.items():
                key = self.keys.predictions(slot)
                pipe.hset(key, mapping=records)  # type: ignore[arg-type]
                pipe.expireat(key, (slot + 1) * PREDICTION_SLOT_SECONDS + self.feedback_ttl_seconds)
            if self.examples is not None:
                self.examples.write_inputs(pipe, kept_inputs, self.feedback_ttl_seconds)
            for (model, version), latest in aggregate.latest_times().items():
                pipe.sadd(self.keys.models, model)
                pipe.hset(self.keys.versions(model), version, latest)
            pipe.xack(self.stream, self.group, *ids)
            await pipe.execute()
        EVENTS_CONSUMED.inc(events)
        EVENTS_MALFORMED.inc(malformed)
        return events

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until stop is set; Redis outages are waited out."""
        next_claim = 0.0
        ready = False
        while not stop.is_set():
            try:
                if not ready:
                    await self.ensure_group()
                    await self.drain_pending()
                    ready = True
                if time.monotonic() >= next_claim:
                    await self.claim_abandoned()
                    next_claim = time.monotonic() + max(self.claim_idle_ms / 1000 / 2, 1.0)
                await self.step()
            except (RedisError, OSError) as exc:
                log.warning("event consumer waits for Redis", extra={"error": repr(exc)})
                ready = "NOGROUP" not in str(exc) and ready
                await _sleep_unless(stop, 1.0)
            except Exception:  # a bug: the batch stays pending (retried on restart); keep consuming
                log.exception("event batch failed")
                await _sleep_unless(stop, 1.0)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> Any:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
