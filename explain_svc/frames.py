"""Explanations of users' models on their raw columns: one attribution per column the model takes,
categorical ones included, whatever the model does inside (encoders, imputers, a pipeline).

A model-agnostic SHAP explainer masks numbers: each column is encoded as one (numbers as they are,
a missing one as NaN; booleans as 0/1; strings and categories as their index in a table of the
values seen), and every coalition the explainer evaluates is decoded back into the rows the model
takes, checked and built by the same input path as a prediction's. The explained output is, by
task: a classifier's probability (its decision function when it has no probabilities), a
regressor's value, an anomaly detector's decision score, a clusterer's minus distance to the
cluster's centre.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from explain_svc.attributions import Attribution, Method, RowAttributions
from explain_svc.settings import ExplainSettings
from explain_svc.tabular import ExactMethod, PermutationMethod
from protoserve_models.card import ModelCard
from protoserve_models.inputs import InputLimits, ModelInputs, rows_to_inputs
from protoserve_models.model import LoadedModel, PredictionBatch
from protoserve_runtime.errors import FailedPrecondition

NUMBER_KINDS = ("double", "integer")


def needs_raw_columns(card: ModelCard) -> bool:
    """Whether a model is explained on its raw columns here, rather than by the explainers of
    models of real numbers (tabular.py): a model fitted on named columns or on other types than
    real numbers, or one whose answer is not a probability or a single value."""
    if card.is_text:
        return False
    return (
        card.input_format == "dataframe"
        or any(f.type != "double" for f in card.inputs)
        or card.task not in ("classification", "regression")
        or (card.task == "classification" and not card.probabilities)
        or bool(card.outputs)
    )


def _missing(value: Any) -> bool:
    """None, NaN or pandas' NA (whose comparisons raise)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


class ColumnCodec:
    """A model's raw input rows as a float matrix, and back."""

    def __init__(self, card: ModelCard, limits: InputLimits) -> None:
        self.card = card
        self.limits = limits
        # Per string, categorical or boolean column: the values seen, by code (grown as rows come).
        self._tables: dict[str, list[Any]] = {f.name: [] for f in card.inputs if f.type not in NUMBER_KINDS}
        self._codes: dict[str, dict[Any, int]] = {name: {} for name in self._tables}
        self._lock = threading.Lock()

    def _code(self, name: str, value: Any) -> float:
        key = None if _missing(value) else value
        codes = self._codes[name]
        code = codes.get(key)
        if code is None:
            with self._lock:
                code = codes.setdefault(key, len(self._tables[name]))
                if code == len(self._tables[name]):
                    self._tables[name].append(key)
        return float(code)

    def columns(self, inputs: ModelInputs) -> list[list[Any]]:
        """The raw values of each card input, column by column (a DataFrame or a matrix)."""
        if hasattr(inputs, "columns"):
            return [inputs[f.name].tolist() for f in self.card.inputs]
        matrix = np.asarray(inputs)
        return [matrix[:, j].tolist() for j in range(len(self.card.inputs))]

    def encode(self, inputs: ModelInputs) -> np.ndarray:
        encoded = []
        for feature, values in zip(self.card.inputs, self.columns(inputs)):
            if feature.type in NUMBER_KINDS:
                encoded.append([math.nan if _missing(v) else float(v) for v in values])
            else:
                encoded.append([self._code(feature.name, v) for v in values])
        return np.array(encoded, dtype=np.float64).T.reshape(-1, len(self.card.inputs))

    def decode(self, matrix: np.ndarray) -> ModelInputs:
        """The model's input for encoded rows: built and checked as a prediction's rows are."""
        names = self.card.feature_names
        columns: list[list[Any]] = []
        for j, feature in enumerate(self.card.inputs):
            column = matrix[:, j].tolist()
            if feature.type == "integer":
                columns.append([None if math.isnan(v) else int(round(v)) for v in column])
            elif feature.type == "double":
                columns.append([None if math.isnan(v) else v for v in column])
            else:
                table = self._tables[feature.name]
                columns.append([table[int(v)] for v in column])
        rows = [dict(zip(names, values)) for values in zip(*columns)]
        return rows_to_inputs(self.card, rows, InputLimits(max(len(rows), 1), self.limits.max_text_length))

    def text(self, feature_index: int, value: float) -> str:
        """How an encoded value of a string, categorical or boolean column reads."""
        raw = self._tables[self.card.inputs[feature_index].name][int(value)]
        if raw is None:
            return "null"
        return ("true" if raw else "false") if isinstance(raw, (bool, np.bool_)) else str(raw)


class _EncodedModel:
    """The model seen by a masking explainer: encoded rows in, the explained output out."""

    def __init__(self, model: LoadedModel, codec: ColumnCodec) -> None:
        estimator = model.estimator
        card = model.card
        output: Callable[[Any], Any]
        if card.task == "classification":
            self.classes_ = np.array(card.labels)  # card order: outputs are reordered to it below
            order = [list(map(str, estimator.classes_)).index(label) for label in card.labels]
            if card.probabilities:
                def output(x: Any) -> Any:
                    return np.asarray(estimator.predict_proba(x))[:, order]
            elif card.decision_scores:
                def output(x: Any) -> Any:
                    scores = np.asarray(estimator.decision_function(x), dtype=np.float64)
                    return scores[:, order] if scores.ndim == 2 else scores
            else:
                raise FailedPrecondition(f"model {card.name!r} gives neither probabilities nor decision scores to explain")
        elif card.task == "anomaly_detection":
            output = estimator.decision_function if hasattr(estimator, "decision_function") else estimator.score_samples
        elif card.task == "clustering":
            if not hasattr(estimator, "transform"):
                raise FailedPrecondition(
                    f"model {card.name!r}: a clusterer is explained by its distances to the centres (transform)"
                )
            self.classes_ = np.array(card.labels)

            def output(x: Any) -> Any:
                return -np.asarray(estimator.transform(x), dtype=np.float64)
        else:
            output = estimator.predict
        self._output = output
        self._codec = codec

    def __call__(self, encoded: np.ndarray) -> np.ndarray:
        return np.asarray(self._output(self._codec.decode(encoded)), dtype=np.float64)


class FrameMethod(Method):
    """Exact SHAP (few columns) or permutation SHAP (many) on a model's raw columns, against the
    card's reference sample as background."""

    def __init__(self, model: LoadedModel, settings: ExplainSettings) -> None:
        super().__init__(model)
        card = model.card
        limits = InputLimits(settings.models.max_rows, settings.models.max_text_length)
        self.codec = ColumnCodec(card, limits)
        sample = card.reference_sample
        count = min((len(sample.get(name, [])) for name in card.feature_names), default=0)
        if not count:
            raise FailedPrecondition(
                f"model {card.name!r} version {card.version}: its card has no reference_sample to explain against"
            )
        rows = [{name: sample[name][i] for name in card.feature_names}
                for i in range(min(count, settings.explain_background_rows))]
        background = self.codec.encode(rows_to_inputs(card, rows, InputLimits(len(rows), limits.max_text_length)))
        encoded = _EncodedModel(model, self.codec)
        shim = _Shim(model, encoded)
        inner: ExactMethod | PermutationMethod
        if len(card.inputs) <= settings.explain_exact_max_features:
            inner = ExactMethod(shim, background)  # type: ignore[arg-type]
        else:
            inner = PermutationMethod(shim, background, settings.explain_permutations)  # type: ignore[arg-type]
        self.inner = inner
        self.name = inner.name
        self.classes = [str(c) for c in getattr(encoded, "classes_", [])]
        probabilities = card.task == "classification" and card.probabilities
        self.output_space = "probability" if probabilities else "margin" if card.task == "classification" else "value"
        self.background = inner.background + " (on the raw columns, categories encoded)"

    @property
    def features(self) -> int:
        return self.inner.features

    @property
    def samples(self) -> int:
        return self.inner.samples

    def labels_to_explain(self, predictions: PredictionBatch, label: str) -> list[str]:
        if self.model.card.task in ("regression", "anomaly_detection"):
            return [""] * len(predictions)  # the value, or the anomaly score
        return super().labels_to_explain(predictions, label)

    def predict_and_explain(self, inputs: ModelInputs, label: str) -> tuple[PredictionBatch, list[RowAttributions]]:
        predictions = self.model.predict(inputs)
        return predictions, self.explain(self.codec.encode(inputs), self.labels_to_explain(predictions, label))

    def _explain(self, inputs: np.ndarray, labels: Sequence[str]) -> list[RowAttributions]:
        rows = self.inner._explain(inputs, labels)
        card = self.model.card
        for row, encoded in zip(rows, inputs.tolist()):
            for j, attribution in enumerate(row.attributions):
                if card.inputs[j].type not in NUMBER_KINDS:
                    row.attributions[j] = Attribution(
                        attribution.name, attribution.kind, attribution.value, 0.0, feature_text=self.codec.text(j, encoded[j])
                    )
        return rows


class _Shim:
    """What the masking explainers read of a model: its card, its classes and its output function."""

    def __init__(self, model: LoadedModel, encoded: _EncodedModel) -> None:
        self.card = model.card
        self.estimator = _OutputEstimator(encoded)


class _OutputEstimator:
    """The explained output as the estimator interface the masking explainers call (predict_proba
    for classes, predict otherwise)."""

    def __init__(self, encoded: _EncodedModel) -> None:
        if hasattr(encoded, "classes_"):
            self.classes_ = encoded.classes_
            self.predict_proba = encoded
        self.predict = encoded
