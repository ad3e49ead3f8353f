"""User models get an explainer by their type, with permutation SHAP as the fallback; all add up."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from explain_svc.gp import gp_mean
from explain_svc.methods import build_method
from explain_svc.settings import ExplainSettings
from protoserve_models.card import Feature, ModelCard
from protoserve_models.model import LoadedModel
from protoserve_runtime.errors import FailedPrecondition

NAMES = ("a", "b", "c")
SETTINGS = ExplainSettings(explain_background_rows=30, explain_permutations=4)


def user_model(estimator, x: np.ndarray, labels: tuple[str, ...] = ()) -> LoadedModel:
    card = ModelCard(
        name="user", version="1", task="classification" if labels else "regression", description="",
        inputs=tuple(Feature(n, "double") for n in NAMES), labels=labels,
        reference_sample={n: x[:, j].tolist() for j, n in enumerate(NAMES)},
    )
    return LoadedModel(card, estimator)


def classification_data() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_classification(n_samples=120, n_features=3, n_informative=3, n_redundant=0, random_state=0)
    return x, np.array(["no", "yes"])[y]


@pytest.mark.parametrize(
    ("estimator", "method", "space"),
    [
        (RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0), "tree_shap", "probability"),
        (Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]), "linear_shap", "margin"),
    ],
)
def test_classifiers_by_type(estimator, method: str, space: str) -> None:
    x, y = classification_data()
    model = user_model(estimator.fit(x, y), x, ("no", "yes"))
    explainer = build_method(model, SETTINGS)
    assert (explainer.name, explainer.output_space) == (method, space)
    for label in ("no", "yes"):
        for row in explainer.explain(x[:4], [label] * 4):
            assert abs(row.base_value + sum(a.value for a in row.attributions) - row.output_value) < 1e-6


@pytest.mark.parametrize(
    ("estimator", "method", "settings"),
    [
        (Ridge(), "linear_shap", SETTINGS),
        (SVR(), "exact_shap", SETTINGS),  # three features: every coalition is cheap
        # a Gaussian process: exact SHAP evaluates the coalitions with its mean computed directly
        (Pipeline([("scale", StandardScaler()), ("gp", GaussianProcessRegressor(
            ConstantKernel(2.0) * RBF([3.0, 2.0, 4.0]) + WhiteKernel(0.1), normalize_y=True, optimizer=None))]),
         "exact_shap", SETTINGS),
        (SVR(), "permutation_shap", ExplainSettings(explain_background_rows=30, explain_permutations=4,
                                                    explain_exact_max_features=2)),
    ],
)
def test_regressors_by_type_with_the_agnostic_fallback(estimator, method: str, settings: ExplainSettings) -> None:
    x, y = make_regression(n_samples=80, n_features=3, random_state=0)
    model = user_model(estimator.fit(x, y), x)
    explainer = build_method(model, settings)
    assert (explainer.name, explainer.output_space) == (method, "value")
    rows = explainer.explain(x[:3], [""] * 3)
    for row, value in zip(rows, estimator.predict(x[:3])):
        assert row.output_value == pytest.approx(value)
        assert abs(row.base_value + sum(a.value for a in row.attributions) - row.output_value) < 1e-6 * max(1, abs(value))


@pytest.mark.parametrize(
    ("estimator", "direct"),
    [
        (Pipeline([("scale", StandardScaler()), ("gp", GaussianProcessRegressor(
            ConstantKernel(2.0) * RBF([1.0, 0.5, 2.0]) + WhiteKernel(0.1), normalize_y=True, optimizer=None))]), True),
        (GaussianProcessRegressor(WhiteKernel(0.1) + RBF(2.0) * ConstantKernel(3.0), optimizer=None), True),
        (GaussianProcessRegressor(Matern(), optimizer=None), False),  # not an RBF: the model itself is called
        (SVR(), False),
    ],
)
def test_gaussian_process_mean_is_predict(estimator, direct: bool) -> None:
    x = np.random.default_rng(1).normal(size=(80, 3))
    mean = gp_mean(estimator.fit(x, 10 * np.sin(x).sum(axis=1) + 5))
    assert (mean is not None) == direct
    if mean is not None:
        rows = np.random.default_rng(0).normal(size=(200, 3)) * 3  # beyond the training data too
        expected = estimator.predict(rows)
        np.testing.assert_allclose(mean(rows), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_a_text_model_that_is_not_linear_is_refused_clearly() -> None:
    texts = np.array(["good film", "bad film", "great", "awful"] * 5, dtype=object)
    labels = np.array(["pos", "neg", "pos", "neg"] * 5)
    pipeline = Pipeline([("words", CountVectorizer()), ("forest", RandomForestClassifier(n_estimators=3))]).fit(texts, labels)
    card = ModelCard(name="user", version="1", task="classification", description="",
                     inputs=(Feature("text", "string"),), labels=("neg", "pos"))
    with pytest.raises(FailedPrecondition, match="not a linear model"):
        build_method(LoadedModel(card, pipeline), SETTINGS)


def test_a_count_vectorizer_text_model_is_explained_per_token() -> None:
    texts = np.array(["good film", "bad film", "really good", "really bad"] * 5, dtype=object)
    labels = np.array(["pos", "neg", "pos", "neg"] * 5)
    pipeline = Pipeline([("words", CountVectorizer(ngram_range=(1, 2))), ("lr", LogisticRegression())]).fit(texts, labels)
    card = ModelCard(name="user", version="1", task="classification", description="",
                     inputs=(Feature("text", "string"),), labels=("neg", "pos"))
    explainer = build_method(LoadedModel(card, pipeline), SETTINGS)
    [row] = explainer.explain(np.array(["A GOOD film, good!"], dtype=object), ["pos"])
    assert [(a.name, a.start) for a in row.attributions] == [("GOOD", 2), ("film", 7), ("good", 13)]
    assert row.attributions[0].value > 0
    assert abs(row.base_value + sum(a.value for a in row.attributions) - row.output_value) < 1e-9


def test_a_tabular_model_without_a_reference_sample_is_refused_clearly() -> None:
    x, y = make_regression(n_samples=40, n_features=3, random_state=0)
    model = user_model(SVR().fit(x, y), x)
    bare = LoadedModel(ModelCard(**{**model.card.__dict__, "reference_sample": {}}), model.estimator)
    with pytest.raises(FailedPrecondition, match="reference_sample lacks a, b, c"):
        build_method(bare, SETTINGS)
