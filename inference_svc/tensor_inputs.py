"""Named tensors checked against a model card, and a model's outputs as named tensors.

Transport-free: the Open Inference Protocol adapter decodes wire tensors into numpy arrays, and
this module decides whether they fit the card. A model of numbers fitted on numpy takes either one
numeric tensor ``input`` shaped [rows, features] (columns in card order) or one tensor per
feature, named as in the card, shaped [rows] or [rows, 1]. A model fitted on named columns takes
one tensor per column with the datatype of its type (FP64, INT64, BOOL, BYTES for strings and
categories; as MLServer's pandas codec does), or ``input`` when every column is a number. A text
model takes one BYTES tensor named as its feature, shaped [rows] or [rows, 1], UTF-8 text. Errors
name the tensor as ``inputs[i]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from protoserve_models.card import Feature, ModelCard
from protoserve_models.columns import ColumnInputs
from protoserve_models.inputs import InputLimits, ServedInputs, check_row_count, check_rows
from protoserve_models.model import PredictionBatch
from protoserve_runtime.errors import FieldViolation, InvalidArgument

MATRIX_INPUT = "input"
# The outputs of each kind of model and their datatypes, in the order they are sent.
CLASSIFIER_OUTPUTS: Mapping[str, str] = MappingProxyType({"label": "BYTES", "probabilities": "FP64"})
LABEL_OUTPUTS: Mapping[str, str] = MappingProxyType({"label": "BYTES"})  # a classifier without probabilities
SCORED_LABEL_OUTPUTS: Mapping[str, str] = MappingProxyType({"label": "BYTES", "scores": "FP64"})
REGRESSOR_OUTPUTS: Mapping[str, str] = MappingProxyType({"mean": "FP64", "variance": "FP64"})
ANOMALY_OUTPUTS: Mapping[str, str] = MappingProxyType({"label": "BYTES", "score": "FP64"})
CLUSTER_OUTPUTS: Mapping[str, str] = MappingProxyType({"cluster": "INT64", "label": "BYTES"})
# The datatype of each feature type, one tensor per column.
COLUMN_DATATYPES: Mapping[str, str] = MappingProxyType(
    {"double": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES", "categorical": "BYTES"}
)
# Which array kinds (numpy dtype.kind) each feature type accepts.
_COLUMN_KINDS = {"double": "iuf", "integer": "iu", "boolean": "b", "string": "O", "categorical": "O"}


@dataclass(frozen=True)
class TensorSpec:
    """What a model takes or gives: a tensor name, its datatype and shape (-1 = any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


class NamedTensor(NamedTuple):
    name: str
    array: np.ndarray  # numeric, or an object array of bytes for text


def takes_matrix(card: ModelCard) -> bool:
    """A model of real numbers fitted on numpy: one FP64 matrix (or one numeric tensor per feature)."""
    return card.input_format == "array" and all(f.type == "double" for f in card.inputs)


def input_specs(card: ModelCard) -> list[TensorSpec]:
    if card.is_text:
        return [TensorSpec(card.inputs[0].name, "BYTES", (-1,))]
    if takes_matrix(card):
        return [TensorSpec(MATRIX_INPUT, "FP64", (-1, len(card.inputs)))]
    return [TensorSpec(f.name, COLUMN_DATATYPES[f.type], (-1,)) for f in card.inputs]


def output_specs(card: ModelCard) -> list[TensorSpec]:
    wide = {"probabilities": len(card.labels), "mean": len(card.outputs), "variance": len(card.outputs)}
    if card.task == "classification" and card.decision_scores and len(card.labels) > 2:
        wide["scores"] = len(card.labels)
    return [TensorSpec(name, datatype, (-1, wide[name]) if wide.get(name) else (-1,))
            for name, datatype in output_datatypes(card).items()]


def output_datatypes(card: ModelCard) -> Mapping[str, str]:
    """The model's outputs and their datatypes, by name, in the order they are sent."""
    if card.task == "classification":
        if card.probabilities:
            return CLASSIFIER_OUTPUTS
        return SCORED_LABEL_OUTPUTS if card.decision_scores else LABEL_OUTPUTS
    if card.task == "anomaly_detection":
        return ANOMALY_OUTPUTS
    if card.task == "clustering":
        return CLUSTER_OUTPUTS
    return REGRESSOR_OUTPUTS


def tensor_error(index: int, name: str, attribute: str, description: str) -> InvalidArgument:
    """An InvalidArgument for field ``inputs[index].attribute`` naming the tensor."""
    return InvalidArgument.for_field(f"inputs[{index}].{attribute}", f"tensor {name!r}: {description}")


def _column(index: int, tensor: NamedTensor) -> np.ndarray:
    """A [rows] or [rows, 1] tensor as a 1-D array."""
    array = tensor.array
    if array.ndim == 2 and array.shape[1] == 1:
        return array.reshape(-1)
    if array.ndim != 1:
        raise tensor_error(index, tensor.name, "shape", f"shape {list(array.shape)} must be [rows] or [rows, 1]")
    return array


def _numeric(index: int, tensor: NamedTensor, array: np.ndarray) -> np.ndarray:
    kind = array.dtype.kind
    if kind not in "iuf":
        what = "BYTES" if kind == "O" else str(array.dtype).upper()
        raise tensor_error(index, tensor.name, "datatype", f"{what} given; this model takes numbers (FP32 or FP64)")
    matrix = np.asarray(array, dtype=np.float64)  # no copy when it is FP64 already
    if kind == "f" and not np.isfinite(matrix).all():
        raise tensor_error(index, tensor.name, "contents", "every value must be a finite number")
    return matrix


def tensors_to_inputs(card: ModelCard, tensors: Sequence[NamedTensor], limits: InputLimits) -> ServedInputs:
    """The model's input as it was fitted: a float64 matrix (rows × card features), a 1-D object
    array of str, or (a model fitted on named columns) what check_rows makes of the columns."""
    if card.is_text:
        return _text_input(card, tensors, limits)
    if not takes_matrix(card):
        return _column_inputs(card, tensors, limits)
    if len(tensors) == 1 and tensors[0].name == MATRIX_INPUT:
        return _matrix_input(card, tensors[0], limits)
    return _feature_inputs(card, tensors, limits)


def _column_inputs(card: ModelCard, tensors: Sequence[NamedTensor], limits: InputLimits) -> ServedInputs:
    """One tensor per column, each of its feature's datatype, checked as Predict's rows are (the
    same rules, the same input built); a violation names the tensor and the element."""
    names = card.feature_names
    if len(tensors) == 1 and tensors[0].name == MATRIX_INPUT and card.is_numeric:
        matrix = tensors[0].array
        if matrix.ndim != 2 or matrix.shape[1] != len(names):
            wanted = f"[rows, {len(names)}] ({', '.join(names)})"
            raise tensor_error(0, MATRIX_INPUT, "shape", f"shape {list(matrix.shape)} must be {wanted}")
        tensors = [NamedTensor(name, matrix[:, j]) for j, name in enumerate(names)]
        where = {name: 0 for name in names}
    else:
        _expect_names(tensors, names)
        where = {t.name: i for i, t in enumerate(tensors)}
    by_name = {t.name: t for t in tensors}
    columns: list[list[object]] = []
    rows = -1
    for feature in card.inputs:
        index, tensor = where[feature.name], by_name[feature.name]
        column = _typed_column(index, tensor, feature.type, _column(index, tensor))
        if rows < 0:
            rows = len(column)
            check_row_count(rows, limits, f"inputs[{index}].shape")
        elif len(column) != rows:
            raise tensor_error(index, feature.name, "shape", f"{len(column)} rows, but the other inputs have {rows}")
        columns.append(column)
    if card.input_format == "dataframe":
        checked = [_checked_column(card, feature, by_name[feature.name].array, column, limits)
                   for feature, column in zip(card.inputs, columns)]
        if all(values is not None for values in checked):
            return ColumnInputs(card.inputs, checked)  # type: ignore[arg-type]
    # Row by row, as Predict's rows are checked: each violation named (or a model fitted on numpy).
    row_dicts = [dict(zip(names, values)) for values in zip(*columns)]
    try:
        return check_rows(card, row_dicts, limits)
    except InvalidArgument as exc:
        raise _as_tensor_error(exc, where) from None


def _checked_column(card: ModelCard, feature: Feature, array: np.ndarray, values: list[object],
                    limits: InputLimits) -> list[object] | None:
    """A column's values when the whole column passes check_rows's checks, found with a few array
    operations instead of one call per value; None when some value would not (then the rows are
    checked one by one, to name each violation)."""
    if feature.type == "double":
        if array.dtype.kind != "f":
            return list(np.asarray(array, dtype=np.float64).reshape(-1).tolist())  # check_number's floats
        if np.isfinite(array).all():
            return values
        return values if feature.nullable and not np.isinf(array).any() else None  # NaN: missing
    if feature.type == "integer":
        return None if array.dtype.kind == "u" and array.size and int(array.max()) >= 2**63 else values
    if feature.type == "boolean":
        return values
    max_length = feature.max_length or limits.max_text_length
    if any(len(text) > max_length for text in values):  # type: ignore[arg-type]
        return None
    if feature.type == "categorical" and card.strict_categories and not set(values) <= set(feature.categories):
        return None
    return values


def _typed_column(index: int, tensor: NamedTensor, kind: str, array: np.ndarray) -> list[object]:
    """A column's values as Python values of the feature's type (NaN as a missing value)."""
    if array.dtype.kind not in _COLUMN_KINDS[kind]:
        given = "BYTES" if array.dtype.kind == "O" else str(array.dtype).upper()
        raise tensor_error(index, tensor.name, "datatype", f"{given} given; this {kind} column takes {COLUMN_DATATYPES[kind]}")
    if kind in ("string", "categorical"):
        try:
            return [item.decode("utf-8") if isinstance(item, bytes) else str(item) for item in array.tolist()]
        except UnicodeDecodeError:
            raise tensor_error(index, tensor.name, "contents", "every element must be UTF-8 text") from None
    values: list[object] = array.tolist()
    if kind == "double":
        return [None if v != v else v for v in values]  # type: ignore[comparison-overlap]
    return values


def _as_tensor_error(exc: InvalidArgument, where: Mapping[str, int]) -> InvalidArgument:
    """A row check's violations (``rows[i].name``) as the tensors' (``inputs[k].contents``)."""
    violations = []
    for violation in exc.violations:
        row, _, name = violation.field.removeprefix("rows[").partition("].")
        index = where.get(name)
        if index is None:
            violations.append(violation)
            continue
        violations.append(FieldViolation(f"inputs[{index}].contents", f"tensor {name!r}: element {row}: {violation.description}"))
    if not violations:
        return exc
    first = violations[0]
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    return InvalidArgument(f"{first.field}: {first.description}{more}", violations)


def _text_input(card: ModelCard, tensors: Sequence[NamedTensor], limits: InputLimits) -> np.ndarray:
    feature = card.inputs[0]
    _expect_names(tensors, [feature.name])
    tensor = tensors[0]
    if tensor.array.dtype.kind != "O":
        given = str(tensor.array.dtype).upper()
        raise tensor_error(0, tensor.name, "datatype", f"{given} given; this model takes BYTES (UTF-8 text)")
    column = _column(0, tensor)
    check_row_count(len(column), limits, "inputs[0].shape")
    max_length = feature.max_length or limits.max_text_length
    texts = np.empty(len(column), dtype=object)
    for k, item in enumerate(column):
        try:
            text = item.decode("utf-8") if isinstance(item, bytes) else str(item)
        except UnicodeDecodeError:
            raise tensor_error(0, tensor.name, "contents", f"element {k} is not UTF-8 text") from None
        if len(text) > max_length:
            too_long = f"element {k}: {len(text)} characters is over the limit of {max_length}"
            raise tensor_error(0, tensor.name, "contents", too_long)
        texts[k] = text
    return texts


def _matrix_input(card: ModelCard, tensor: NamedTensor, limits: InputLimits) -> np.ndarray:
    width = len(card.inputs)
    shape = tensor.array.shape
    if len(shape) != 2 or shape[1] != width:
        wanted = f"[rows, {width}] ({', '.join(card.feature_names)})"
        raise tensor_error(0, tensor.name, "shape", f"shape {list(shape)} must be {wanted}")
    check_row_count(shape[0], limits, "inputs[0].shape")
    return _numeric(0, tensor, tensor.array)


def _feature_inputs(card: ModelCard, tensors: Sequence[NamedTensor], limits: InputLimits) -> np.ndarray:
    names = card.feature_names
    _expect_names(tensors, names)
    by_name = {t.name: (i, t) for i, t in enumerate(tensors)}
    columns = []
    rows = -1
    for name in names:
        index, tensor = by_name[name]
        column = _numeric(index, tensor, _column(index, tensor))
        if rows < 0:
            rows = len(column)
            check_row_count(rows, limits, f"inputs[{index}].shape")
        elif len(column) != rows:
            raise tensor_error(index, name, "shape", f"{len(column)} rows, but the other inputs have {rows}")
        columns.append(column)
    return np.stack(columns, axis=1)


def _expect_names(tensors: Sequence[NamedTensor], names: Sequence[str]) -> None:
    given = [t.name for t in tensors]
    for i, name in enumerate(given):
        if name not in names:
            takes = f"{MATRIX_INPUT!r} [rows, {len(names)}] or one tensor per feature: {', '.join(names)}"
            if len(names) == 1:
                takes = repr(names[0])
            raise tensor_error(i, name, "name", f"unknown input; this model takes {takes}")
    missing = [n for n in names if n not in given]
    if missing:
        raise InvalidArgument.for_field("inputs", f"missing input tensor(s): {', '.join(missing)}")


def outputs_to_arrays(card: ModelCard, outputs: PredictionBatch) -> dict[str, np.ndarray]:
    """The named output tensors of a prediction (labels as UTF-8 bytes)."""
    if card.task == "regression":
        assert outputs.values is not None and outputs.variances is not None
        return {"mean": outputs.values, "variance": outputs.variances}
    assert outputs.label_indices is not None
    labels = _encoded(card.labels)[outputs.label_indices]
    if card.task == "clustering":
        return {"cluster": outputs.label_indices.astype(np.int64), "label": labels}
    if card.task == "anomaly_detection":
        assert outputs.scores is not None
        return {"label": labels, "score": outputs.scores}
    if outputs.probabilities is not None:
        return {"label": labels, "probabilities": outputs.probabilities}
    return {"label": labels} if outputs.scores is None else {"label": labels, "scores": outputs.scores}


@lru_cache(maxsize=256)
def _encoded(labels: tuple[str, ...]) -> np.ndarray:
    """The labels as UTF-8 bytes, made once per label set rather than per request."""
    return np.array([label.encode("utf-8") for label in labels], dtype=object)


def check_requested(card: ModelCard, requested: Sequence[str]) -> list[str]:
    """The outputs to send: those requested (in order), or all of them."""
    available = output_datatypes(card)
    for i, name in enumerate(requested):
        if name not in available:
            raise InvalidArgument.for_field(
                f"outputs[{i}].name", f"{name!r} is not an output of {card.name}; it gives {', '.join(available)}"
            )
    return list(requested) or list(available)

