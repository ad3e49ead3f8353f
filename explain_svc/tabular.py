"""Explainers of models that take a row of numbers: exact tree SHAP, linear SHAP, and the
model-agnostic ones: exact SHAP over every coalition, permutation SHAP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shap
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from explain_svc.attributions import Method, Outputs, RowAttributions, feature_rows
from explain_svc.gp import gp_mean
from protoserve_models.card import ModelCard
from protoserve_models.model import LoadedModel
from protoserve_runtime.errors import FailedPrecondition

TREE_MODELS = (
    GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor,
    ExtraTreesClassifier, ExtraTreesRegressor, DecisionTreeClassifier, DecisionTreeRegressor,
)
# Steps that scale each column on its own: a linear model after them is still linear in each input.
COLUMNWISE_SCALERS = (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler)


def reference_background(card: ModelCard, rows: int) -> np.ndarray:
    """The first rows of the card's reference sample (drawn at random from the training data)."""
    sample = card.reference_sample
    missing = [name for name in card.feature_names if not sample.get(name)]
    if missing:
        raise FailedPrecondition(
            f"model {card.name!r} version {card.version}: its card's reference_sample lacks "
            f"{', '.join(missing)}; this explainer needs it as background"
        )
    columns = [[float(v) for v in sample[name][:rows]] for name in card.feature_names]
    if len({len(c) for c in columns}) != 1:
        raise FailedPrecondition(f"model {card.name!r}: the reference_sample columns differ in length")
    return np.array(columns, dtype=np.float64).T


def _raw_output(estimator: Any, classifier_output: str) -> Callable[[np.ndarray], np.ndarray]:
    if not hasattr(estimator, "classes_"):
        return estimator.predict  # type: ignore[no-any-return]
    return getattr(estimator, classifier_output)  # type: ignore[no-any-return]


# How far a cheaper function of the model's output may stray from the model's own, relative to the
# output's scale, for the explainer to use it (rounding is ~1e-15).
AGREEMENT = 1e-9


def _coalition_output(estimator: Any, raw: Callable[[np.ndarray], np.ndarray], background: np.ndarray
                      ) -> Callable[[np.ndarray], np.ndarray]:
    """What exact SHAP evaluates the coalitions with: the model's output, or a cheaper function
    equal to it (a Gaussian process's mean), checked against the model on the background once."""
    cheaper = gp_mean(estimator)
    if cheaper is None:
        return raw
    expected, got = raw(background), cheaper(background)
    if not np.allclose(got, expected, rtol=AGREEMENT, atol=AGREEMENT * float(np.max(np.abs(expected), initial=1.0))):
        return raw
    return cheaper


class TreeMethod(Method):
    """Exact TreeSHAP (path-dependent: the trees' own training cover is the background)."""

    name = "tree_shap"
    serial = False
    background = "the training data, as the trees' node counts record it (path-dependent TreeSHAP)"

    def __init__(self, model: LoadedModel) -> None:
        super().__init__(model)
        estimator = model.estimator
        self.explainer = shap.TreeExplainer(estimator)
        boosted = isinstance(estimator, GradientBoostingClassifier)
        # Boosted classifiers add up log-odds; forests and single trees average probabilities.
        self.output_space = "value" if not self.classes else "margin" if boosted else "probability"
        self._raw = _raw_output(estimator, "decision_function" if boosted else "predict_proba")

    @property
    def features(self) -> int:
        return len(self.model.card.inputs)

    def _explain(self, inputs: np.ndarray, labels: Sequence[str]) -> list[RowAttributions]:
        outputs = Outputs.of(self.explainer.shap_values(inputs), self.explainer.expected_value, self._raw(inputs))
        return feature_rows(outputs, inputs, self.model.card.feature_names, self.classes, labels)


def linear_parts(estimator: Any) -> tuple[Any, Any] | None:
    """(column-wise scaling steps or None, the linear model) when the model is linear in its inputs."""
    steps = estimator.steps if isinstance(estimator, Pipeline) else [("model", estimator)]
    final = steps[-1][1]
    if not (type(final).__module__.startswith("sklearn.linear_model") and hasattr(final, "coef_")):
        return None
    if not all(isinstance(step, COLUMNWISE_SCALERS) for _, step in steps[:-1]):
        return None
    return (Pipeline(steps[:-1]) if len(steps) > 1 else None), final


class LinearMethod(Method):
    """Linear SHAP with independent features: attribution = weight × (value − background mean)."""

    name = "linear_shap"
    serial = False

    def __init__(self, model: LoadedModel, background: np.ndarray) -> None:
        super().__init__(model)
        parts = linear_parts(model.estimator)
        assert parts is not None
        self._scale, linear = parts
        self.explainer = shap.LinearExplainer((linear.coef_, linear.intercept_), self._scaled(background))
        self.output_space = "margin" if self.classes else "value"
        self.background = f"the mean of {len(background)} rows of the model card's reference sample"
        self._raw = _raw_output(model.estimator, "decision_function")

    def _scaled(self, inputs: np.ndarray) -> np.ndarray:
        return inputs if self._scale is None else np.asarray(self._scale.transform(inputs))

    @property
    def features(self) -> int:
        return len(self.model.card.inputs)

    def _explain(self, inputs: np.ndarray, labels: Sequence[str]) -> list[RowAttributions]:
        values = self.explainer.shap_values(self._scaled(inputs))
        outputs = Outputs.of(values, self.explainer.expected_value, self._raw(inputs))
        return feature_rows(outputs, inputs, self.model.card.feature_names, self.classes, labels)


class ExactMethod(Method):
    """Model-agnostic exact SHAP against a background sample of the card: the model predicts every
    coalition of features (the others taken from each background row), 2^features x background rows
    in one batch. Exactly additive and deterministic; the cost doubles with each feature, so it is
    chosen only where the features are few."""

    name = "exact_shap"  # serial: shap's masker fills one shared buffer per call

    def __init__(self, model: LoadedModel, background: np.ndarray) -> None:
        super().__init__(model)
        self.output_space = "probability" if self.classes else "value"
        self.background = f"{len(background)} rows of the model card's reference sample"
        self._rows = len(background)
        self._raw = _raw_output(model.estimator, "predict_proba")
        masker = shap.maskers.Independent(background, max_samples=len(background))
        self.explainer = shap.explainers.ExactExplainer(_coalition_output(model.estimator, self._raw, background), masker)

    @property
    def features(self) -> int:
        return len(self.model.card.inputs)

    @property
    def samples(self) -> int:
        return -(-(2**self.features) * self._rows // self.features)  # model rows per feature, rounded up

    def _explain(self, inputs: np.ndarray, labels: Sequence[str]) -> list[RowAttributions]:
        explanation = self.explainer(inputs, silent=True)
        outputs = Outputs.of(explanation.values, explanation.base_values, self._raw(inputs))
        return feature_rows(outputs, inputs, self.model.card.feature_names, self.classes, labels)


class PermutationMethod(Method):
    """Model-agnostic permutation SHAP against a background sample of the card.

    Each permutation's contributions add up to output − base exactly (they telescope), so the
    explanation is additive up to rounding; the split between features is an estimate.
    """

    name = "permutation_shap"  # serial: it seeds and draws from numpy's global generator

    def __init__(self, model: LoadedModel, background: np.ndarray, permutations: int) -> None:
        super().__init__(model)
        self.output_space = "probability" if self.classes else "value"
        self.background = f"{len(background)} rows of the model card's reference sample"
        self._rows = len(background)
        self._permutations = permutations
        self._raw = _raw_output(model.estimator, "predict_proba")
        masker = shap.maskers.Independent(background, max_samples=len(background))
        self.explainer = shap.PermutationExplainer(self._raw, masker, seed=0)

    @property
    def features(self) -> int:
        return len(self.model.card.inputs)

    @property
    def _evaluations(self) -> int:
        return self._permutations * (2 * self.features + 1)

    @property
    def samples(self) -> int:
        return -(-self._evaluations * self._rows // self.features)  # model rows per feature, rounded up

    def _explain(self, inputs: np.ndarray, labels: Sequence[str]) -> list[RowAttributions]:
        values, base = [], []
        state = np.random.get_state()  # shap draws permutations from numpy's global generator
        try:
            for i in range(len(inputs)):
                np.random.seed(0)  # same row, same answer
                explanation = self.explainer(inputs[i : i + 1], max_evals=self._evaluations, silent=True)
                values.append(explanation.values[0])
                base.append(explanation.base_values[0])
        finally:
            np.random.set_state(state)
        outputs = Outputs.of(np.stack(values), np.stack(base), self._raw(inputs))
        return feature_rows(outputs, inputs, self.model.card.feature_names, self.classes, labels)
