"""What a window's summed counters mean: traffic, latency percentiles, outputs, accuracy, drift."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from monitoring_svc import drift
from monitoring_svc.aggregates import LATENCY_EDGES_MS, Counts
from monitoring_svc.profiles import FeatureProfile, ModelProfile


@dataclass(frozen=True)
class Accuracy:
    labeled_count: int = 0
    accuracy: float = 0.0
    f1_macro: float = 0.0
    mae: float = 0.0
    rmse: float = 0.0


@dataclass(frozen=True)
class Traffic:
    request_count: int
    row_count: int
    errors_by_code: dict[str, int]
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float

    @property
    def error_count(self) -> int:
        return sum(self.errors_by_code.values())

    @property
    def error_rate(self) -> float:
        return self.error_count / self.request_count if self.request_count else 0.0


@dataclass(frozen=True)
class Outputs:
    label_shares: dict[str, float] = field(default_factory=dict)
    mean: float = 0.0
    standard_deviation: float = 0.0


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    tests: list[drift.TestResult]
    drifted: bool
    bins: list[tuple[str, float, float]]  # label, reference share, live share
    insufficient_data: bool


def latency_percentile(counts: Counts, q: float) -> float:
    """The q-th latency quantile in ms, interpolated inside its histogram bin."""
    bins = np.array([counts.get(f"lat:{i}", 0.0) for i in range(len(LATENCY_EDGES_MS) + 1)])
    n = bins.sum()
    if n == 0:
        return 0.0
    target = q * n
    cumulative = np.cumsum(bins)
    i = int(np.searchsorted(cumulative, target, side="left"))
    lower = 0.0 if i == 0 else float(LATENCY_EDGES_MS[i - 1])
    if i >= len(LATENCY_EDGES_MS):
        return lower
    upper = float(LATENCY_EDGES_MS[i])
    before = cumulative[i - 1] if i > 0 else 0.0
    inside = (target - before) / bins[i] if bins[i] else 1.0
    return lower + (upper - lower) * float(inside)


def traffic(counts: Counts) -> Traffic:
    errors = {name[4:]: int(n) for name, n in counts.items() if name.startswith("err:") and n}
    return Traffic(
        request_count=int(counts.get("req", 0)),
        row_count=int(counts.get("rows", 0)),
        errors_by_code=errors,
        latency_p50_ms=latency_percentile(counts, 0.50),
        latency_p95_ms=latency_percentile(counts, 0.95),
        latency_p99_ms=latency_percentile(counts, 0.99),
    )


def outputs(counts: Counts) -> Outputs:
    labels = {name[4:]: n for name, n in counts.items() if name.startswith("out:")}
    if labels:
        n = sum(labels.values())
        return Outputs(label_shares={k: v / n for k, v in sorted(labels.items())} if n else {})
    rows = counts.get("rows", 0.0)
    if not rows or "osum" not in counts:
        return Outputs()
    mean = counts["osum"] / rows
    variance = max(counts.get("osq", 0.0) / rows - mean * mean, 0.0)
    return Outputs(mean=mean, standard_deviation=math.sqrt(variance))


def accuracy(counts: Counts, labels: tuple[str, ...]) -> Accuracy:
    labeled = int(counts.get("fb", 0))
    if labeled == 0:
        return Accuracy()
    if "fae" in counts or "fse" in counts:
        return Accuracy(labeled, mae=counts.get("fae", 0.0) / labeled, rmse=math.sqrt(counts.get("fse", 0.0) / labeled))
    confusion: Counter[tuple[str, str]] = Counter()
    for name, n in counts.items():
        if name.startswith("cm:"):
            true, _, predicted = name[3:].partition("|")
            confusion[(true, predicted)] += int(n)
    classes = set(labels) | {t for t, _ in confusion} | {p for _, p in confusion}
    scores = []
    for c in sorted(classes):
        tp = confusion[(c, c)]
        fp = sum(n for (t, p), n in confusion.items() if p == c and t != c)
        fn = sum(n for (t, p), n in confusion.items() if t == c and p != c)
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return Accuracy(labeled, accuracy=counts.get("fbc", 0.0) / labeled, f1_macro=float(np.mean(scores)) if scores else 0.0)


def _feature_drift(j: int, feature: FeatureProfile, counts: Counts, thresholds: drift.Thresholds, min_rows: int) -> FeatureDrift:
    live = np.array([counts.get(f"f:{j}:{b}", 0.0) for b in range(feature.bins)])
    reference = feature.reference_counts.astype(np.float64)
    prefix = "length_" if feature.kind == "text" else ""
    tests = drift.distribution_tests(prefix, reference, live, thresholds, categorical=feature.kind == "categorical")
    if feature.kind == "text":
        tests.append(drift.oov_test(counts.get("tok", 0.0), counts.get("oov", 0.0), feature.reference_oov_rate, thresholds))
    insufficient = live.sum() < min_rows
    ref_shares, live_shares = drift.shares(reference), drift.shares(live)
    bins = [(label, float(r), float(li)) for label, r, li in zip(feature.labels(), ref_shares, live_shares)]
    return FeatureDrift(
        feature=feature.name,
        kind=feature.kind,
        tests=tests,
        drifted=not insufficient and drift.verdict(tests),
        bins=bins,
        insufficient_data=bool(insufficient),
    )


def feature_drift(profile: ModelProfile, counts: Counts, thresholds: drift.Thresholds, min_rows: int) -> list[FeatureDrift]:
    return [_feature_drift(j, f, counts, thresholds, min_rows) for j, f in enumerate(profile.features)]
