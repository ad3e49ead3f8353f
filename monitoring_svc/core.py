"""The transport-free monitoring core: reads windows back from Redis and answers every RPC."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client import Gauge

from monitoring_svc import drift, summary
from monitoring_svc.aggregates import Keys, RedisClient, Window, read_buckets, total
from monitoring_svc.alerts import Alert, AlertStore, ModelWindow
from monitoring_svc.feedback import FeedbackRecorder, FeedbackResult
from monitoring_svc.labeled_examples import LabeledExamples
from monitoring_svc.profiles import ProfileStore
from protoserve_models.repository import check_model_name, check_version
from protoserve_runtime.errors import InvalidArgument, NotFound

DRIFT_STATISTIC = Gauge(
    "protoserve_monitoring_drift_statistic",
    "Drift test statistic of a model input over the alert window (psi, ks, chi2, length_*, oov_rate).",
    ["model", "version", "feature", "test"],
)


@dataclass(frozen=True)
class TimePoint:
    start: int
    request_count: int
    row_count: int
    error_count: int
    latency_p99_ms: float


@dataclass(frozen=True)
class WindowReport:
    window: Window
    traffic: summary.Traffic
    outputs: summary.Outputs
    accuracy: summary.Accuracy
    timeline: list[TimePoint]


@dataclass(frozen=True)
class DriftReport:
    model: str
    version: str
    window: Window
    row_count: int
    reference_count: int
    features: list[summary.FeatureDrift]


class MonitoringCore:
    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        windows: list[Window],
        profiles: ProfileStore,
        thresholds: drift.Thresholds,
        drift_min_rows: int,
        alert_window: str,
        feedback_ttl_seconds: int,
        examples: LabeledExamples | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.windows = windows
        self.profiles = profiles
        self.thresholds = thresholds
        self.drift_min_rows = drift_min_rows
        self.alert_window = self.window(alert_window)
        self.alerts = AlertStore(client, keys)
        self.feedback = FeedbackRecorder(client, keys, windows, profiles, feedback_ttl_seconds, examples)

    def window(self, name: str) -> Window:
        for window in self.windows:
            if window.name == name:
                return window
        raise InvalidArgument.for_field("window", f"{name!r} is not a window: one of {', '.join(w.name for w in self.windows)}")

    async def resolve(self, model: str, version: str) -> tuple[str, str]:
        """The version asked for, or the one with the most recent traffic."""
        if not model:
            raise InvalidArgument.for_field("model", "is required")
        check_model_name(model)  # names reach file paths (the model cards): refuse what no model is
        if version:
            return model, check_version(version)
        seen = await self.client.hgetall(self.keys.versions(model))
        if not seen:
            raise NotFound(f"no predictions of model {model!r} were seen")
        latest = max(seen.items(), key=lambda item: float(item[1]))
        return model, latest[0].decode()

    async def record_feedback(self, prediction_id: str, label: str | None, value: float | None) -> FeedbackResult:
        return await self.feedback.record(prediction_id, label, value, time.time())

    async def model_metrics(self, model: str, version: str, window: str) -> tuple[str, str, list[WindowReport]]:
        windows = [self.window(window)] if window else self.windows
        model, version = await self.resolve(model, version)
        profile = self.profiles.get(model, version)
        labels = profile.card.labels if profile else ()
        now = time.time()
        reports = []
        for w in windows:
            buckets = await read_buckets(self.client, self.keys, model, version, w, now)
            counts = total(buckets)
            timeline = []
            for start, c in buckets:
                t = summary.traffic(c)
                timeline.append(TimePoint(start, t.request_count, t.row_count, t.error_count, t.latency_p99_ms))
            accuracy = summary.accuracy(counts, labels)
            reports.append(WindowReport(w, summary.traffic(counts), summary.outputs(counts), accuracy, timeline))
        return model, version, reports

    async def drift(self, model: str, version: str, window: str) -> DriftReport:
        w = self.window(window) if window else self.alert_window
        model, version = await self.resolve(model, version)
        profile = self.profiles.get(model, version)
        if profile is None:
            raise NotFound(f"no model card for {model} version {version} in the model repository")
        counts = total(await read_buckets(self.client, self.keys, model, version, w, time.time()))
        features = summary.feature_drift(profile, counts, self.thresholds, self.drift_min_rows)
        return DriftReport(model, version, w, int(counts.get("rows", 0)), profile.reference_count, features)

    async def observe(self, now: float) -> list[ModelWindow]:
        """What the alert rules look at: every model version with traffic in the alert window."""
        w = self.alert_window
        seen = []
        for raw_model in sorted(await self.client.smembers(self.keys.models)):
            model = raw_model.decode()
            for raw_version, last in (await self.client.hgetall(self.keys.versions(model))).items():
                if now - float(last) > w.seconds:
                    continue
                version = raw_version.decode()
                counts = total(await read_buckets(self.client, self.keys, model, version, w, now))
                profile = self.profiles.get(model, version)
                features = summary.feature_drift(profile, counts, self.thresholds, self.drift_min_rows) if profile else []
                for f in features:
                    for test in f.tests:
                        DRIFT_STATISTIC.labels(model, version, f.feature, test.name).set(drift.finite(test.statistic))
                labels = profile.card.labels if profile else ()
                is_classifier = profile.card.task == "classification" if profile else bool(labels)
                accuracy = summary.accuracy(counts, labels)
                seen.append(ModelWindow(model, version, summary.traffic(counts), accuracy, features, is_classifier))
        return seen

    async def list_alerts(self, model: str, limit: int) -> tuple[list[Alert], list[Alert], float]:
        if limit < 0:
            raise InvalidArgument.for_field("limit", "must not be negative")
        firing = await self.alerts.firing(model)
        history = await self.alerts.history(model, limit or 100)
        return firing, history, await self.alerts.last_evaluation()

    def watch_alerts(self, model: str) -> AsyncIterator[Alert]:
        return self.alerts.watch(model)
