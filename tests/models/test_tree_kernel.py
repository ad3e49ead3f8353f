"""The HistGradientBoosting kernel against scikit-learn: the same probabilities to the last bit (so
the same labels), on real data with and without missing values, one row and many, from a matrix, a
DataFrame and checked columns; and not compiled where scikit-learn does something else."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from protoserve_models.card import ModelCard
from protoserve_models.kernels import proba_kernel
from protoserve_models.model import LoadedModel
from protoserve_models.signature import infer_feature
from protoserve_models.tree_kernel import HistGradientBoostingKernel
from tests.models.conftest import NUMERIC, checked_columns


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Fitting and scikit-learn's predict on one OpenMP thread: its threads spin while they wait,
    and beside other work on two cores that made these tests a hundred times slower."""
    with threadpool_limits(limits=1):
        yield


def assert_exact(kernel: HistGradientBoostingKernel, model: HistGradientBoostingClassifier, frame: pd.DataFrame) -> None:
    reference = model.predict_proba(frame)
    for inputs in (frame, frame.to_numpy(), checked_columns(frame)):
        np.testing.assert_array_equal(kernel(inputs), reference)
    for row in (0, len(frame) - 1):  # one row: the commonest call
        np.testing.assert_array_equal(kernel(frame.iloc[[row]]), reference[[row]])


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    data = load_breast_cancer(as_frame=True)
    return data.data, data.target


def test_a_binary_model_on_a_numeric_table(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    x, y = cancer
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(x, y)
    kernel = HistGradientBoostingKernel.compile(model)
    assert kernel is not None and isinstance(proba_kernel(model), HistGradientBoostingKernel)
    assert_exact(kernel, model, x)


def test_missing_values_go_where_each_split_learned(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    x, y = cancer
    rng = np.random.default_rng(0)
    gappy = x.mask(rng.random(x.shape) < 0.15)  # missing in training: each split learns a side for NaN
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(gappy, y)
    kernel = HistGradientBoostingKernel.compile(model)
    assert kernel is not None
    assert_exact(kernel, model, gappy)
    assert_exact(kernel, model, x.mask(rng.random(x.shape) < 0.3))  # and gaps where training had none


def test_a_multiclass_model_with_early_stopping(penguins: pd.DataFrame) -> None:
    frame = penguins[NUMERIC]
    model = HistGradientBoostingClassifier(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
                                           random_state=0).fit(frame, penguins["species"])
    assert model.n_iter_ < model.max_iter and model.n_trees_per_iteration_ == 3
    kernel = HistGradientBoostingKernel.compile(model)
    assert kernel is not None
    assert_exact(kernel, model, frame)


def test_a_served_version_answers_from_the_kernel_exactly() -> None:
    wine = load_wine(as_frame=True)
    model = HistGradientBoostingClassifier(max_iter=30, max_depth=4, random_state=0).fit(wine.data, wine.target)
    served = LoadedModel(card_for(wine.data, model), model, fast_kernel=True)
    assert served.fast
    outputs = served.predict(checked_columns(wine.data))
    np.testing.assert_array_equal(outputs.probabilities, model.predict_proba(wine.data))
    assert outputs.label_indices.tolist() == model.predict(wine.data).tolist()


def card_for(frame: pd.DataFrame, model: HistGradientBoostingClassifier) -> ModelCard:
    inputs = tuple(infer_feature(str(n), frame[n], dataframe=True) for n in frame.columns)
    return ModelCard(name="wine", version="1", task="classification", description="", inputs=inputs,
                     input_format="dataframe", labels=tuple(str(c) for c in model.classes_))


def test_what_it_would_not_compute_exactly_is_not_compiled(penguins: pd.DataFrame,
                                                           cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    x, y = cancer
    categorical = penguins[["island", "bill_length_mm"]].astype({"island": "category"})
    not_compiled = [
        HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=10).fit(categorical, penguins["species"]),
        HistGradientBoostingRegressor(max_iter=10).fit(x, y),
        GradientBoostingClassifier(n_estimators=5).fit(x, y),
    ]
    for model in not_compiled:
        assert HistGradientBoostingKernel.compile(model) is None, model
