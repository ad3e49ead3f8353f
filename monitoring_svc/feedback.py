"""Feedback: the true answer for a logged prediction, joined with it and counted in the buckets of
the time the prediction was made. One feedback per prediction; both live in Redis."""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client import Counter

from monitoring_svc.aggregates import PREDICTION_SLOT_SECONDS, Keys, LoggedPrediction, RedisClient, Window
from monitoring_svc.labeled_examples import LabeledExamples
from monitoring_svc.profiles import ProfileStore
from protoserve_runtime.errors import AlreadyExists, InvalidArgument, NotFound

FEEDBACK = Counter(
    "protoserve_monitoring_feedback_total", "Feedback recorded, by outcome (correct, wrong, regression).", ["outcome"]
)


@dataclass(frozen=True)
class FeedbackResult:
    model: str
    version: str
    correct: bool
    error: float


class FeedbackRecorder:
    def __init__(
        self, client: RedisClient, keys: Keys, windows: list[Window], profiles: ProfileStore, ttl_seconds: int,
        examples: LabeledExamples | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.windows = windows
        self.profiles = profiles
        self.ttl_seconds = ttl_seconds
        self.examples = examples  # publishes each feedback with its prediction's inputs, for training

    async def _logged(self, prediction_id: str, now: float) -> bytes | None:
        """The logged prediction, looked up in the hourly hashes from the newest back over the TTL."""
        newest = int(now // PREDICTION_SLOT_SECONDS) + 1  # +1: a publisher's clock may run ahead
        slots = range(newest, newest - self.ttl_seconds // PREDICTION_SLOT_SECONDS - 3, -1)
        async with self.client.pipeline(transaction=False) as pipe:
            for slot in slots:
                pipe.hget(self.keys.predictions(slot), prediction_id)
            found = await pipe.execute()
        return next((raw for raw in found if raw is not None), None)

    async def record(self, prediction_id: str, label: str | None, value: float | None, now: float) -> FeedbackResult:
        if not prediction_id:
            raise InvalidArgument.for_field("prediction_id", "is required")
        if label is None and value is None:
            raise InvalidArgument.for_field("truth", "set label (for a classifier) or value (for a regressor)")
        raw = await self._logged(prediction_id, now)
        if raw is None:
            raise NotFound(
                f"prediction {prediction_id!r} is unknown: it was never made, is older than "
                f"{self.ttl_seconds} s, or its event has not been consumed yet"
            )
        logged = LoggedPrediction.parse(raw)
        model, version = logged.model, logged.version
        fields: dict[str, float] = {"fb": 1}
        if logged.label is not None:
            if label is None:
                raise InvalidArgument.for_field("value", f"prediction {prediction_id!r} is a classification: send label")
            profile = self.profiles.get(model, version)
            if profile is not None and label not in profile.card.labels:
                known = ", ".join(profile.card.labels)
                raise InvalidArgument.for_field("label", f"{label!r} is not a label of {model}: one of {known}")
            correct, error = label == logged.label, 0.0
            fields["fbc"] = int(correct)
            fields[f"cm:{label}|{logged.label}"] = 1
        else:
            if value is None:
                raise InvalidArgument.for_field("label", f"prediction {prediction_id!r} is a regression: send value")
            if not math.isfinite(value):
                raise InvalidArgument.for_field("value", "must be a finite number")
            correct, error = False, float(logged.value or 0.0) - value
            fields["fae"] = abs(error)
            fields["fse"] = error * error
        if not await self.client.set(self.keys.feedback(prediction_id), label if label is not None else repr(value),
                                     nx=True, ex=self.ttl_seconds):
            raise AlreadyExists(f"feedback for prediction {prediction_id!r} was recorded already")
        inputs = None if self.examples is None else await self.examples.inputs_of(self.client, prediction_id, logged)
        async with self.client.pipeline(transaction=True) as pipe:
            if self.examples is not None and inputs is not None:
                self.examples.publish(pipe, inputs, prediction_id, logged, label, value, now)
            for window in self.windows:
                start = window.start_of(logged.time)
                ttl = window.ttl(start, now)
                if ttl <= 0:
                    continue
                key = self.keys.bucket(model, version, window, start)
                for name, amount in fields.items():
                    if isinstance(amount, int):
                        pipe.hincrby(key, name, amount)
                    else:
                        pipe.hincrbyfloat(key, name, amount)
                pipe.expire(key, ttl)
            await pipe.execute()
        FEEDBACK.labels("regression" if logged.label is None else "correct" if correct else "wrong").inc()
        return FeedbackResult(model, version, correct, error)
