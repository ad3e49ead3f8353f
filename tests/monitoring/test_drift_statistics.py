"""The drift statistics on binned counts agree with scipy on raw samples and react to shifts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitoring_svc import drift
from monitoring_svc.profiles import bin_index, build_profile
from protoserve_models.card import Feature, ModelCard

THRESHOLDS = drift.Thresholds(psi=0.2, p_value=0.01, oov_increase=0.2)


def counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.bincount(bin_index(edges, values), minlength=len(edges) + 1)


def test_ks_on_bins_equals_scipy_when_every_value_has_its_own_bin() -> None:
    rng = np.random.default_rng(0)
    reference, live = rng.integers(0, 10, 300), rng.integers(2, 12, 1000)
    edges = np.unique(np.concatenate([reference, live])).astype(np.float64)[1:]
    statistic, p_value = drift.ks_binned(counts(edges, reference), counts(edges, live))
    expected = stats.ks_2samp(reference, live, method="asymp")
    assert statistic == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)


def test_same_distribution_is_not_drift_and_a_shift_is() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 1, 200)
    card = ModelCard("m", "1", "regression", "", (Feature("x", "double"),), reference_sample={"x": reference.tolist()})
    feature = build_profile(card).features[0]
    same = drift.distribution_tests("", feature.reference_counts, counts(feature.edges, rng.choice(reference, 2000)), THRESHOLDS)
    shifted = drift.distribution_tests("", feature.reference_counts, counts(feature.edges, rng.normal(1, 1, 2000)), THRESHOLDS)
    assert not drift.verdict(same) and drift.verdict(shifted)
    assert same[0].statistic < 0.1 < 0.2 < shifted[0].statistic


def test_chi_squared_on_categories() -> None:
    reference = np.array([50, 30, 20, 0])
    assert drift.chi_squared(reference, np.array([500, 300, 200, 0]))[1] == pytest.approx(1.0)
    statistic, p_value = drift.chi_squared(reference, np.array([200, 300, 500, 0]))
    assert statistic > 30 and p_value < 1e-6
    tests = drift.distribution_tests("", reference, np.array([200, 300, 500, 0]), THRESHOLDS, categorical=True)
    assert [t.name for t in tests] == ["psi", "chi2"] and drift.verdict(tests)


def test_text_profile_measures_length_and_unknown_words() -> None:
    texts = [f"the film was {w} and the acting {v}" for w in ("good", "bad", "long", "fine") for v in ("worked", "failed")]
    card = ModelCard("t", "1", "classification", "", (Feature("text", "string"),), labels=("a", "b"),
                     reference_sample={"text": texts * 5})
    feature = build_profile(card).features[0]
    assert feature.kind == "text" and "film" in feature.vocabulary
    unknown = drift.oov_test(live_tokens=100, live_oov=90, reference_rate=feature.reference_oov_rate, thresholds=THRESHOLDS)
    assert unknown.drifted and drift.verdict([unknown])
