"""What every explanation method returns, and the bookkeeping they share.

An explanation of one row is additive: ``base_value + sum(attribution values) == output_value``,
where the output is the explained label's probability or margin (or a regressor's value), as the
method's ``output_space`` says. ``output_value`` is read from the model itself, never summed up.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from protoserve_models.model import LoadedModel, PredictionBatch

AttributionKind = Literal["feature", "token", "derived"]
OutputSpace = Literal["probability", "margin", "value"]
MethodName = Literal["tree_shap", "linear_shap", "permutation_shap", "exact_shap"]


@dataclass(frozen=True)
class Attribution:
    name: str
    kind: AttributionKind
    value: float
    feature_value: float = 0.0
    start: int = 0  # tokens only: code-point offsets into the text
    end: int = 0
    feature_text: str = ""  # string, categorical and boolean features: the value as text


@dataclass(frozen=True)
class RowAttributions:
    label: str  # the explained label; empty for regressors
    base_value: float
    output_value: float
    attributions: list[Attribution]


@dataclass(frozen=True)
class Outputs:
    """Attributions, base values and model outputs of n rows, one column per model output."""

    values: np.ndarray  # n × features × outputs
    base: np.ndarray  # n × outputs
    raw: np.ndarray  # n × outputs: the model's own output in the method's space

    @classmethod
    def of(cls, values: Any, base: Any, raw: Any) -> Outputs:
        """Bring shap's many shapes (scalar base, one output without an axis, ...) to one."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 2:
            v = v[:, :, None]
        n, outputs = v.shape[0], v.shape[2]
        b = np.asarray(base, dtype=np.float64)
        b = b.reshape(-1, 1) if outputs == 1 else b.reshape(-1, outputs)
        return cls(v, np.broadcast_to(b, (n, outputs)), np.asarray(raw, dtype=np.float64).reshape(n, outputs))

    def column(self, classes: Sequence[str], label: str) -> tuple[int, float]:
        """The output column of label and its sign: a binary model may give one score, that of
        classes[1]; the other label's margin is its negative."""
        if not label:
            return 0, 1.0
        k = list(classes).index(label)
        if self.values.shape[2] == 1:
            return 0, 1.0 if k == 1 else -1.0
        return k, 1.0

    def row(self, i: int, classes: Sequence[str], label: str) -> tuple[np.ndarray, float, float]:
        """(attribution per feature, base value, output value) of row i for label."""
        k, sign = self.column(classes, label)
        return sign * self.values[i, :, k], sign * float(self.base[i, k]), sign * float(self.raw[i, k])


class Method(ABC):
    """One explainer, built once per model version; ``explain`` is called from worker threads."""

    name: MethodName
    output_space: OutputSpace
    background: str  # a sentence: what the base value is the expectation over
    serial = True  # whether calls must take turns (the exact methods compute without shared state)

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.classes = [str(c) for c in getattr(model.estimator, "classes_", [])]
        self._lock = threading.Lock()

    @property
    @abstractmethod
    def features(self) -> int:
        """The number of features the method attributes to (n-grams and derived ones for text)."""

    @property
    def samples(self) -> int:
        """Model evaluations per row and feature: 1 for exact methods."""
        return 1

    def cost(self, rows: int) -> int:
        """rows × features × samples: what the explain cost limit is checked against."""
        return rows * self.features * self.samples

    def predict_and_explain(self, inputs: np.ndarray, label: str) -> tuple[PredictionBatch, list[RowAttributions]]:
        """The model's predictions, and each row's attributions toward label (its predicted label
        when label is empty)."""
        predictions = self.model.predict(inputs)
        return predictions, self.explain(inputs, self.labels_to_explain(predictions, label))

    def labels_to_explain(self, predictions: PredictionBatch, label: str) -> list[str]:
        if label or predictions.label_indices is None:
            return [label] * len(predictions)
        return [self.model.card.labels[i] for i in predictions.label_indices.tolist()]

    def explain(self, inputs: np.ndarray, labels: Sequence[str]) -> list[RowAttributions]:
        if not self.serial:
            return self._explain(inputs, labels)
        with self._lock:
            return self._explain(inputs, labels)

    @abstractmethod
    def _explain(self, inputs: np.ndarray, labels: Sequence[str]) -> list[RowAttributions]:
        """Attributions of each row (validated inputs) toward its label ("" for regressors)."""


def feature_rows(outputs: Outputs, inputs: np.ndarray, names: Sequence[str], classes: Sequence[str],
                 labels: Sequence[str]) -> list[RowAttributions]:
    """Rows of a tabular model: one attribution per input feature."""
    rows = []
    for i, label in enumerate(labels):
        values, base, output = outputs.row(i, classes, label)
        attributions = [
            Attribution(name, "feature", float(v), float(x)) for name, v, x in zip(names, values.tolist(), inputs[i].tolist())
        ]
        rows.append(RowAttributions(label, base, output, attributions))
    return rows
