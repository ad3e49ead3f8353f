"""Drift statistics on binned counts: PSI, the two-sample Kolmogorov-Smirnov test and chi-squared.

Live values are never kept one by one: the consumers count them into bins fixed by the reference
sample (see profiles.py), so replicas can add their counts together in Redis. The tests here work
on those counts. KS on bins is exact at the bin edges, and the edges are the reference quantiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Shares are floored at this before logs are taken, so an empty bin does not make PSI infinite.
SHARE_FLOOR = 1e-4


@dataclass(frozen=True)
class Thresholds:
    psi: float  # PSI at or above this counts as a shift
    p_value: float  # a test p-value at or below this counts as significant
    oov_increase: float  # text: OOV rate above the reference's by at least this much


@dataclass(frozen=True)
class TestResult:
    name: str
    statistic: float
    p_value: float
    threshold: float
    drifted: bool


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=np.float64)


def psi(reference_counts: np.ndarray, live_counts: np.ndarray) -> float:
    """Population stability index: sum (live - ref) * ln(live / ref) over the bins."""
    ref = np.maximum(shares(reference_counts.astype(np.float64)), SHARE_FLOOR)
    live = np.maximum(shares(live_counts.astype(np.float64)), SHARE_FLOOR)
    return float(np.sum((live - ref) * np.log(live / ref)))


def ks_binned(reference_counts: np.ndarray, live_counts: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic (largest CDF gap at the bin edges) and its asymptotic p-value,
    computed the way scipy.stats.ks_2samp(method="asymp") does."""
    n, m = float(reference_counts.sum()), float(live_counts.sum())
    if n == 0 or m == 0:
        return 0.0, 1.0
    gap = np.abs(np.cumsum(reference_counts) / n - np.cumsum(live_counts) / m)
    d = float(gap.max())
    effective = round(n * m / (n + m))
    p_value = float(stats.kstwo.sf(d, effective)) if effective > 0 else 1.0
    return d, min(max(p_value, 0.0), 1.0)


def chi_squared(reference_counts: np.ndarray, live_counts: np.ndarray) -> tuple[float, float]:
    """Chi-squared test of homogeneity between the reference and live category counts."""
    table = np.vstack([reference_counts, live_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]  # categories neither side saw carry no information
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def distribution_tests(
    prefix: str, reference_counts: np.ndarray, live_counts: np.ndarray, thresholds: Thresholds, categorical: bool = False
) -> list[TestResult]:
    """PSI beside KS (numbers) or chi-squared (categories); each says whether it alone sees drift."""
    value = psi(reference_counts, live_counts)
    if categorical:
        name, (statistic, p_value) = "chi2", chi_squared(reference_counts, live_counts)
    else:
        name, (statistic, p_value) = "ks", ks_binned(reference_counts, live_counts)
    return [
        TestResult(f"{prefix}psi", value, 0.0, thresholds.psi, value >= thresholds.psi),
        TestResult(f"{prefix}{name}", statistic, p_value, thresholds.p_value, p_value <= thresholds.p_value),
    ]


def oov_test(live_tokens: float, live_oov: float, reference_rate: float, thresholds: Thresholds) -> TestResult:
    rate = live_oov / live_tokens if live_tokens > 0 else 0.0
    return TestResult("oov_rate", rate, 0.0, reference_rate + thresholds.oov_increase,
                      live_tokens > 0 and rate - reference_rate >= thresholds.oov_increase)


def verdict(tests: list[TestResult]) -> bool:
    """A distribution drifted when its shift is both large (PSI) and significant (KS or chi-squared);
    text also drifts on a jump in out-of-vocabulary words."""
    by_name = {t.name: t for t in tests}
    for prefix in ("", "length_"):
        size = by_name.get(f"{prefix}psi")
        test = by_name.get(f"{prefix}ks") or by_name.get(f"{prefix}chi2")
        if size is not None and test is not None and size.drifted and test.drifted:
            return True
    oov = by_name.get("oov_rate")
    return bool(oov and oov.drifted)


def finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0
