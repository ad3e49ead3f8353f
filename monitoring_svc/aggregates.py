"""The monitoring state in Redis: counters per model version and time bucket, one bucket size per
window, that every replica adds its events to and any replica can read a window back from.

A bucket is a Redis hash ``{prefix}:agg:{model}:{version}:{width}:{start}`` whose fields count:
``req`` requests, ``rows`` predicted rows, ``err:{CODE}`` failed requests, ``lat:{i}`` requests per
latency bin, ``out:{label}`` predicted labels, ``osum``/``osq`` sums of predicted values,
``f:{j}:{b}`` rows of feature j in bin b, ``tok``/``oov`` text tokens and unknown ones, and from
feedback ``fb`` labeled predictions, ``fbc`` correct ones, ``cm:{true}|{pred}`` the confusion matrix,
``fae``/``fse`` sums of absolute and squared errors. A window of length W uses buckets W/60 wide,
so it slides in steps of 1/60 of its length. Predictions are logged for feedback in one hash per
hour, ``{prefix}:predictions:{hour}``, written with one HSET per batch; a record is
``model TAB version TAB time TAB answer``, the answer ``L{label}`` or ``V{value}``.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from protoserve.monitoring.v1 import prediction_event_pb2 as event_pb

from monitoring_svc.profiles import ModelProfile, ProfileStore, bin_index, feature_bin_index, tokens

# A redis.asyncio.Redis. Its stubs type every reply as a union of shapes, so replies are checked
# where they are parsed instead.
RedisClient = Any
Counts = dict[str, float]  # a bucket's or a window's fields, summed

# Upper edges of the latency bins in milliseconds; the last bin is everything slower.
PREDICTION_SLOT_SECONDS = 3600
LATENCY_EDGES_MS = np.array(
    [0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10000]
)


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int

    @property
    def width(self) -> int:
        return max(1, self.seconds // 60)

    def start_of(self, t: float) -> int:
        return int(t // self.width) * self.width

    def starts(self, now: float) -> list[int]:
        """Bucket starts covering the window that ends now, oldest first."""
        last = self.start_of(now)
        first = self.start_of(now - self.seconds + self.width)
        return list(range(first, last + 1, self.width))

    def ttl(self, start: int, now: float) -> int:
        return int(start + self.seconds + 2 * self.width - now)


class Keys:
    """Every Redis key the monitoring service writes, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.models = f"{prefix}:models"
        self.alerts_firing = f"{prefix}:alerts:firing"
        self.alerts_log = f"{prefix}:alerts:log"
        self.alerts_lock = f"{prefix}:alerts:lock"
        self.alerts_evaluated = f"{prefix}:alerts:evaluated"

    def bucket(self, model: str, version: str, window: Window, start: int) -> str:
        return f"{self.prefix}:agg:{model}:{version}:{window.width}:{start}"

    def versions(self, model: str) -> str:
        return f"{self.prefix}:versions:{model}"

    def predictions(self, slot: int) -> str:
        """The hash of the predictions made in one hour (prediction id -> record), for feedback."""
        return f"{self.prefix}:predictions:{slot}"

    def feedback(self, prediction_id: str) -> str:
        return f"{self.prefix}:feedback:{prediction_id}"


@dataclass
class _Group:
    """The events of one model version in one batch, as columns."""

    times: list[float] = field(default_factory=list)
    numeric: list[list[float]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    mixed: list[list[object]] = field(default_factory=list)  # rows of models fitted on named columns
    labels: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)
    request_latencies: list[float] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)


def _feature_value(value: event_pb.FeatureValue) -> object:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


@dataclass(frozen=True)
class LoggedPrediction:
    model: str
    version: str
    time: float
    label: str | None  # a classifier's answer
    value: float | None  # a regressor's answer

    @classmethod
    def parse(cls, raw: bytes) -> LoggedPrediction:
        model, version, when, answer = raw.decode().split("\t", 3)
        if answer.startswith("L"):
            return cls(model, version, float(when), answer[1:], None)
        return cls(model, version, float(when), None, float(answer[1:]))


def latency_bins(latencies_ms: np.ndarray) -> np.ndarray:
    return np.searchsorted(LATENCY_EDGES_MS, latencies_ms, side="left")


class BatchAggregate:
    """Turns a batch of PredictionEvents into bucket increments and prediction records."""

    def __init__(self, windows: Iterable[Window], keys: Keys, profiles: ProfileStore) -> None:
        self.windows = list(windows)
        self.keys = keys
        self.profiles = profiles
        self._groups: dict[tuple[str, str], _Group] = defaultdict(_Group)
        self.predictions: dict[int, dict[str, str]] = defaultdict(dict)  # hour slot -> prediction id -> record

    def add(self, event: event_pb.PredictionEvent) -> None:
        group = self._groups[(event.model, event.version)]
        if event.error_code:
            group.errors.append((event.time, event.error_code))
            group.request_times.append(event.time)
            group.request_latencies.append(event.latency_seconds)
            return
        group.times.append(event.time)
        if event.row_index == 0:
            group.request_times.append(event.time)
            group.request_latencies.append(event.latency_seconds)
        if event.inputs:
            group.mixed.append([_feature_value(v) for v in event.inputs])
        elif event.numeric_inputs:
            group.numeric.append(list(event.numeric_inputs))
        else:
            group.texts.append(event.text_input)
        if event.WhichOneof("output") == "label":
            group.labels.append(event.label)
            answer = "L" + event.label
        else:
            group.values.append(event.value)
            answer = f"V{event.value!r}"
        if event.prediction_id:
            record = f"{event.model}\t{event.version}\t{event.time!r}\t{answer}"
            self.predictions[int(event.time // PREDICTION_SLOT_SECONDS)][event.prediction_id] = record

    def increments(self) -> dict[str, tuple[Counter[str], Counts, int]]:
        """Per bucket key: integer fields, float fields, and the key's time to live (at now)."""
        now = time.time()
        out: dict[str, tuple[Counter[str], Counts, int]] = {}
        for (model, version), group in self._groups.items():
            profile = self.profiles.get(model, version)
            columns = _Columns.of(group, profile)
            for window in self.windows:
                for start, ints, floats in columns.by_bucket(window):
                    ttl = window.ttl(start, now)
                    if ttl > 0:
                        key = self.keys.bucket(model, version, window, start)
                        out[key] = (ints, floats, ttl)
        return out

    def latest_times(self) -> dict[tuple[str, str], float]:
        """When each model version was last seen; requests that named no version are not a version."""
        return {k: max(g.times + g.request_times) for k, g in self._groups.items() if k[1] and (g.times or g.request_times)}


@dataclass
class _Columns:
    """A group's events as numpy columns with the bin of every value computed once."""

    times: np.ndarray
    request_times: np.ndarray
    latency_bins: np.ndarray
    error_times: np.ndarray
    error_codes: list[str]
    labels: list[str]
    values: np.ndarray
    feature_bins: list[np.ndarray]  # per feature, the bin of each row
    text_tokens: np.ndarray  # per row, tokens and out-of-vocabulary tokens
    text_oov: np.ndarray

    @classmethod
    def of(cls, group: _Group, profile: ModelProfile | None) -> _Columns:
        times = np.asarray(group.times, dtype=np.float64)
        feature_bins: list[np.ndarray] = []
        text_tokens = text_oov = np.zeros(0)
        if profile is not None and group.numeric and not profile.card.is_text:
            matrix = np.asarray(group.numeric, dtype=np.float64)
            if matrix.ndim == 2 and matrix.shape[1] == len(profile.features):
                feature_bins = [bin_index(f.edges, matrix[:, j]) for j, f in enumerate(profile.features)]
        if profile is not None and group.mixed and len(group.mixed[0]) == len(profile.features):
            feature_bins = [feature_bin_index(f, [row[j] for row in group.mixed]) for j, f in enumerate(profile.features)]
        if profile is not None and group.texts and profile.card.is_text:
            feature = profile.features[0]
            lengths = np.array([len(t) for t in group.texts], dtype=np.float64)
            feature_bins = [bin_index(feature.edges, lengths)]
            words = [tokens(t) for t in group.texts]
            text_tokens = np.array([len(w) for w in words])
            text_oov = np.array([sum(x not in feature.vocabulary for x in w) for w in words])
        return cls(
            times=times,
            request_times=np.asarray(group.request_times, dtype=np.float64),
            latency_bins=latency_bins(np.asarray(group.request_latencies, dtype=np.float64) * 1000.0),
            error_times=np.asarray([t for t, _ in group.errors], dtype=np.float64),
            error_codes=[c for _, c in group.errors],
            labels=group.labels,
            values=np.asarray(group.values, dtype=np.float64),
            feature_bins=feature_bins,
            text_tokens=text_tokens,
            text_oov=text_oov,
        )

    def by_bucket(self, window: Window) -> list[tuple[int, Counter[str], Counts]]:
        width = window.width
        row_starts = (self.times // width).astype(np.int64) * width
        request_starts = (self.request_times // width).astype(np.int64) * width
        error_starts = (self.error_times // width).astype(np.int64) * width
        result = []
        for start in np.unique(np.concatenate([row_starts, request_starts])).tolist():
            ints: Counter[str] = Counter()
            floats: Counts = {}
            rows = row_starts == start
            requests = request_starts == start
            ints["rows"] = int(rows.sum())
            ints["req"] = int(requests.sum())
            for b, n in enumerate(np.bincount(self.latency_bins[requests]).tolist()):
                if n:
                    ints[f"lat:{b}"] = n
            for code, t in zip(self.error_codes, error_starts.tolist()):
                if t == start:
                    ints[f"err:{code}"] += 1
            if self.labels:
                for label, keep in zip(self.labels, rows.tolist()):
                    if keep:
                        ints[f"out:{label}"] += 1
            if self.values.size and self.values.size == rows.size:
                picked = self.values[rows]
                floats["osum"] = float(picked.sum())
                floats["osq"] = float(np.square(picked).sum())
            for j, bins in enumerate(self.feature_bins):
                picked_bins = bins[rows]
                for b, n in enumerate(np.bincount(picked_bins[picked_bins >= 0]).tolist()):  # -1: a missing number
                    if n:
                        ints[f"f:{j}:{b}"] = n
            if self.text_tokens.size:
                ints["tok"] = int(self.text_tokens[rows].sum())
                ints["oov"] = int(self.text_oov[rows].sum())
            result.append((int(start), ints, floats))
        return result


def write_increments(pipe: Any, increments: dict[str, tuple[Counter[str], Counts, int]]) -> None:
    for key, (ints, floats, ttl) in increments.items():
        for name, amount in ints.items():
            if amount:
                pipe.hincrby(key, name, amount)
        for name, value in floats.items():
            if value and math.isfinite(value):
                pipe.hincrbyfloat(key, name, value)
        pipe.expire(key, ttl)


async def read_buckets(
    client: RedisClient, keys: Keys, model: str, version: str, window: Window, now: float
) -> list[tuple[int, Counts]]:
    """The buckets of a window ending now, oldest first, each as field -> number."""
    starts = window.starts(now)
    async with client.pipeline(transaction=False) as pipe:
        for start in starts:
            pipe.hgetall(keys.bucket(model, version, window, start))
        hashes = await pipe.execute()
    buckets = []
    for start, raw in zip(starts, hashes):
        counts = {name.decode(): float(value) for name, value in raw.items()}
        buckets.append((start, counts))
    return buckets


def total(buckets: list[tuple[int, Counts]]) -> Counts:
    summed: Counts = {}
    for _, counts in buckets:
        for name, value in counts.items():
            summed[name] = summed.get(name, 0.0) + value
    return summed
