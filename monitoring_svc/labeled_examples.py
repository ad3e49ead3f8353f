"""Labeled examples for training: feedback joined with the inputs of the prediction it is about.

The consumer keeps the inputs of every logged prediction beside its record, in one hash per hour
``{prefix}:inputs:{hour}`` that expires with the predictions hash (the feedback TTL). An input
larger than ``PROTOSERVE_MONITORING_EXAMPLE_MAX_BYTES`` is not kept, so each kept prediction costs
at most that much on top of its record: the memory is bounded by predictions per feedback TTL
times that cap. When feedback is recorded, the prediction's inputs and the true answer are
published as a LabeledExample to the model's stream ``{PROTOSERVE_LABELED_EXAMPLES_STREAM}:{model}``,
trimmed to about ``PROTOSERVE_LABELED_EXAMPLES_MAX`` entries; training runs read it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from protoserve.monitoring.v1 import labeled_example_pb2
from protoserve.monitoring.v1 import prediction_event_pb2 as event_pb

from monitoring_svc.aggregates import PREDICTION_SLOT_SECONDS, LoggedPrediction

EXAMPLE_FIELD = b"b"  # the serialized LabeledExample of a stream entry


def inputs_key(prefix: str, slot: int) -> str:
    return f"{prefix}:inputs:{slot}"


def example_stream(stream_prefix: str, model: str) -> str:
    return f"{stream_prefix}:{model}"


class LabeledExamples:
    """Keeps the inputs of logged predictions and publishes labeled examples on feedback."""

    def __init__(self, key_prefix: str, stream_prefix: str, max_input_bytes: int, max_examples: int) -> None:
        self.key_prefix = key_prefix
        self.stream_prefix = stream_prefix
        self.max_input_bytes = max_input_bytes
        self.max_examples = max_examples

    def collect(self, events: Iterable[event_pb.PredictionEvent]) -> dict[int, dict[str, bytes]]:
        """The inputs worth keeping, by hour slot and prediction id."""
        kept: dict[int, dict[str, bytes]] = defaultdict(dict)
        if self.max_input_bytes <= 0:
            return kept
        for event in events:
            if not event.prediction_id or event.error_code:
                continue
            inputs = labeled_example_pb2.LabeledExample(
                numeric_inputs=event.numeric_inputs, text_input=event.text_input, inputs=event.inputs
            ).SerializeToString()
            if len(inputs) <= self.max_input_bytes:
                kept[int(event.time // PREDICTION_SLOT_SECONDS)][event.prediction_id] = inputs
        return kept

    def write_inputs(self, pipe: Any, kept: dict[int, dict[str, bytes]], ttl_seconds: int) -> None:
        for slot, records in kept.items():
            key = inputs_key(self.key_prefix, slot)
            pipe.hset(key, mapping=records)
            pipe.expireat(key, (slot + 1) * PREDICTION_SLOT_SECONDS + ttl_seconds)

    async def inputs_of(self, client: Any, prediction_id: str, logged: LoggedPrediction) -> bytes | None:
        slot = int(logged.time // PREDICTION_SLOT_SECONDS)
        raw: bytes | None = await client.hget(inputs_key(self.key_prefix, slot), prediction_id)
        return raw

    def publish(
        self, pipe: Any, inputs: bytes, prediction_id: str, logged: LoggedPrediction,
        label: str | None, value: float | None, now: float,
    ) -> None:
        example = labeled_example_pb2.LabeledExample.FromString(inputs)
        example.prediction_id, example.model, example.version = prediction_id, logged.model, logged.version
        example.time, example.feedback_time = logged.time, now
        if label is not None:
            example.label = label
        elif value is not None:
            example.value = value
        pipe.xadd(example_stream(self.stream_prefix, logged.model), {EXAMPLE_FIELD: example.SerializeToString()},
                  maxlen=self.max_examples, approximate=True)
