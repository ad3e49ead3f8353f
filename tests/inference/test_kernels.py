"""The fast kernels give scikit-learn's own outputs: on the model's data, random rows and ties."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.neighbors import KNeighborsClassifier

from protoserve_models.builtin.recipes import build_iris_knn, load_config
from protoserve_models.kernels import SMALL_BLOCK_ROWS, KNeighborsKernel, proba_kernel
from protoserve_models.model import LoadedModel

RNG_SEED = 7


def tie_heavy_rows(low: np.ndarray, high: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Integer and half-integer grid points (many equal distances) and rows copied from the range ends."""
    grid = rng.integers(np.floor(low), np.ceil(high) + 1, size=(count, low.size)).astype(np.float64)
    grid[: count // 2] += rng.integers(0, 2, size=(count // 2, low.size)) * 0.5
    return grid


def random_rows(low: np.ndarray, high: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(low - 1, high + 1, size=(count, low.size))


def assert_parity(estimator: KNeighborsClassifier, rows: np.ndarray) -> None:
    kernel = proba_kernel(estimator)
    assert isinstance(kernel, KNeighborsKernel)
    expected = estimator.predict_proba(rows)
    got = kernel(rows)
    # Small calls take the kernel's other distance path: in blocks of its size, and row by row.
    small = np.concatenate([kernel(rows[i : i + SMALL_BLOCK_ROWS]) for i in range(0, len(rows), SMALL_BLOCK_ROWS)])
    assert np.array_equal(small, got), "blocks of SMALL_BLOCK_ROWS rows differ from one call"
    singles = np.concatenate([kernel(rows[i : i + 1]) for i in range(0, len(rows), 7)])
    assert np.array_equal(singles, expected[::7]), "single rows differ from scikit-learn"
    mismatched = np.flatnonzero((got != expected).any(axis=1))
    assert mismatched.size == 0, f"{mismatched.size} rows differ, e.g. row {rows[mismatched[0]]}"


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_iris_knn_kernel_matches_scikit_learn(metric: str) -> None:
    config = load_config()
    config["iris-knn"] = {**config["iris-knn"], "metric": metric}
    estimator = build_iris_knn(config).estimator
    data = load_iris().data  # the training rows and the held-out test rows
    rng = np.random.default_rng(RNG_SEED)
    low, high = data.min(axis=0), data.max(axis=0)
    # Iris measurements lie on a 0.1 cm grid, so its own rows tie often: a real test of the tie rule.
    for rows in (data, random_rows(low, high, 2000, rng), tie_heavy_rows(low, high, 2000, rng)):
        assert_parity(estimator, rows)


def _tied_training_set(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Integer points, each present several times with different labels."""
    points = rng.integers(0, 4, size=(40, 3)).astype(np.float64)
    x = np.concatenate([points, points, points[:20]])
    y = rng.choice(np.array(["a", "b", "c"]), size=len(x))
    return x, y


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
@pytest.mark.parametrize("k", [1, 4, 7])
def test_ties_at_the_kth_neighbour_match_scikit_learn(algorithm: str, metric: str, k: int) -> None:
    rng = np.random.default_rng(RNG_SEED + k)
    x, y = _tied_training_set(rng)
    estimator = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm=algorithm).fit(x, y)
    low, high = x.min(axis=0), x.max(axis=0)
    rows = np.concatenate([x, tie_heavy_rows(low, high, 1000, rng), random_rows(low, high, 1000, rng)])
    assert_parity(estimator, rows)


def test_large_values_and_blocks_match_scikit_learn() -> None:
    """Far from the origin the expansion |x|² - 2x·t + |t|² loses digits; the tie margin covers it."""
    rng = np.random.default_rng(RNG_SEED)
    x = 1e6 + rng.integers(0, 5, size=(60, 2)).astype(np.float64)
    y = rng.choice(np.array(["a", "b"]), size=len(x))
    estimator = KNeighborsClassifier(n_neighbors=5, algorithm="brute").fit(x, y)
    rows = np.concatenate([tie_heavy_rows(x.min(axis=0), x.max(axis=0), 2500, rng), x + 1e-7])
    assert_parity(estimator, rows)  # 2,560 rows: more than one block of the kernel


@pytest.mark.parametrize(
    "params",
    [{"weights": "distance"}, {"metric": "minkowski", "p": 3}, {"metric": "chebyshev"}],
)
def test_no_kernel_where_it_would_not_be_exact(params: dict[str, object]) -> None:
    data = load_iris()
    estimator = KNeighborsClassifier(**params).fit(data.data, data.target)  # type: ignore[arg-type]
    assert proba_kernel(estimator) is None


def test_loaded_model_serves_the_same_predictions_with_the_kernel() -> None:
    built = build_iris_knn(load_config())
    plain = LoadedModel(built.card, built.estimator)
    fast = LoadedModel(built.card, built.estimator, fast_kernel=True)
    assert fast.fast and not plain.fast
    rows = load_iris().data
    a, b = plain.predict(rows), fast.predict(rows)
    assert a.probabilities is not None and b.probabilities is not None
    assert np.array_equal(a.probabilities, b.probabilities)
    assert a.label_indices is not None and b.label_indices is not None
    assert np.array_equal(a.label_indices, b.label_indices)
