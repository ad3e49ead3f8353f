"""What a fitted scikit-learn model takes and answers, inferred from the estimator and a sample of
the data it was fitted on: the card's inputs, input format, task, labels and outputs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClusterMixin, is_classifier, is_outlier_detector, is_regressor

from protoserve_models.card import ANOMALY_LABELS, Feature, InputFormat, Task

# An object (string) column with at most this many distinct values is categorical, with the
# categories seen; above it, free text.
MAX_CATEGORIES = 50


class SignatureError(ValueError):
    """The estimator or the sample does not say what the model takes or answers."""


@dataclass(frozen=True)
class Signature:
    inputs: tuple[Feature, ...]
    input_format: InputFormat
    task: Task
    labels: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    probabilities: bool = False
    decision_scores: bool = False


def feature_names(estimator: Any, sample: pd.DataFrame, targets: Sequence[str]) -> tuple[list[str], InputFormat]:
    """The columns the model takes, in its order: ``feature_names_in_`` when it was fitted on a
    DataFrame, else the sample's header (without the target columns)."""
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None:
        names = [str(n) for n in fitted]
        missing = [n for n in names if n not in sample.columns]
        if missing:
            raise SignatureError(f"the sample lacks the column(s) the model was fitted with: {', '.join(missing)}")
        return names, "dataframe"
    names = [str(c) for c in sample.columns if c not in targets]
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and expected != len(names):
        raise SignatureError(
            f"the model takes {expected} features but the sample has {len(names)} columns besides the target: "
            f"{', '.join(names)}"
        )
    if not names:
        raise SignatureError("the sample has no feature columns")
    return names, "array"


def infer_feature(name: str, column: pd.Series, dataframe: bool) -> Feature:
    """A column's type (and categories, nullability, pandas dtype) from its values in the sample."""
    dtype = column.dtype
    nullable = bool(column.isna().any())
    recorded = str(dtype) if dataframe else ""
    if isinstance(dtype, pd.CategoricalDtype):
        return Feature(name, "categorical", nullable=nullable, categories=tuple(str(c) for c in dtype.categories),
                       dtype=recorded)
    if pd.api.types.is_bool_dtype(dtype):
        return Feature(name, "boolean", nullable=nullable, dtype=recorded)
    if pd.api.types.is_integer_dtype(dtype):
        return Feature(name, "integer", nullable=nullable, dtype=recorded)
    if pd.api.types.is_float_dtype(dtype):
        return Feature(name, "double", nullable=nullable, dtype=recorded)
    values = column.dropna()
    if len(values) and all(isinstance(v, (bool, np.bool_)) for v in values):
        return Feature(name, "boolean", nullable=nullable, dtype=recorded)
    if len(values) and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
        return Feature(name, "double", nullable=nullable, dtype=recorded)
    if not all(isinstance(v, str) for v in values):
        raise SignatureError(f"column {name!r} mixes strings with other values; give it one type")
    distinct = sorted(set(values))
    if len(distinct) <= MAX_CATEGORIES:
        return Feature(name, "categorical", nullable=nullable, categories=tuple(distinct), dtype=recorded)
    return Feature(name, "string", nullable=nullable, dtype=recorded)


def infer_signature(estimator: Any, sample: pd.DataFrame, targets: Sequence[str] = ()) -> Signature:
    names, input_format = feature_names(estimator, sample, targets)
    inputs = tuple(infer_feature(n, sample[n], input_format == "dataframe") for n in names)
    if input_format == "array" and len(inputs) == 1 and inputs[0].type == "categorical":
        # A single string column fed as a 1-D array is a text pipeline's input, however few its values.
        inputs = (Feature(inputs[0].name, "string", nullable=inputs[0].nullable),)
    if not hasattr(estimator, "predict"):
        raise SignatureError(f"{type(estimator).__name__} has no predict method; only fitted predictors can be served")
    has_decision = hasattr(estimator, "decision_function")
    if is_classifier(estimator):
        classes = getattr(estimator, "classes_", None)
        if classes is None or isinstance(classes, list) or np.ndim(classes) != 1:
            raise SignatureError("only single-output classifiers (one classes_ array) can be served")
        return Signature(inputs, input_format, "classification", labels=tuple(str(c) for c in classes),
                         probabilities=hasattr(estimator, "predict_proba"), decision_scores=has_decision)
    if is_outlier_detector(estimator):
        return Signature(inputs, input_format, "anomaly_detection", labels=ANOMALY_LABELS, decision_scores=has_decision)
    if isinstance(_final_step(estimator), ClusterMixin):
        return Signature(inputs, input_format, "clustering", labels=tuple(str(i) for i in range(_cluster_count(estimator))))
    if is_regressor(estimator):
        outputs = _output_names(estimator, sample, inputs, input_format, targets)
        return Signature(inputs, input_format, "regression", outputs=outputs)
    raise SignatureError(
        f"{type(estimator).__name__} is not a classifier, regressor, outlier detector or clusterer"
    )


def _final_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _cluster_count(estimator: Any) -> int:
    final = _final_step(estimator)
    centers = getattr(final, "cluster_centers_", None)
    if centers is not None:
        return int(np.shape(centers)[0])
    count = getattr(final, "n_clusters", None)
    if isinstance(count, int):
        return count
    raise SignatureError(f"cannot tell how many clusters {type(final).__name__} has")


def _output_names(estimator: Any, sample: pd.DataFrame, inputs: Sequence[Feature], input_format: InputFormat,
                  targets: Sequence[str]) -> tuple[str, ...]:
    """Empty for one output; else the target columns' names, or output_0.. when not given."""
    predicted = np.asarray(estimator.predict(local_inputs(sample.iloc[:2], inputs, input_format)))
    count = predicted.shape[1] if predicted.ndim == 2 else 1
    if count <= 1:
        return ()
    if len(targets) == count:
        return tuple(targets)
    return tuple(f"output_{i}" for i in range(count))


def local_inputs(sample: pd.DataFrame, inputs: Sequence[Feature], input_format: InputFormat) -> Any:
    """The sample's rows as the user fed them to the model: the DataFrame's feature columns, or
    their numpy array (1-D for a text pipeline's one string column)."""
    names = [f.name for f in inputs]
    if input_format == "dataframe":
        return sample[names]
    if len(inputs) == 1 and inputs[0].type == "string":
        return sample[names[0]].to_numpy()
    return sample[names].to_numpy()


def json_value(feature: Feature, value: Any) -> Any:
    """A sample cell as a request would carry it: a number, true/false, a string or null."""
    if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return None
    if feature.type == "double":
        return float(value)
    if feature.type == "integer":
        return int(value)
    if feature.type == "boolean":
        return bool(value)
    return str(value)


def json_columns(sample: pd.DataFrame, inputs: Sequence[Feature]) -> dict[str, list[Any]]:
    """The sample's feature columns, column-oriented and JSON-safe (NaN as null)."""
    return {f.name: [json_value(f, v) for v in sample[f.name].tolist()] for f in inputs}
