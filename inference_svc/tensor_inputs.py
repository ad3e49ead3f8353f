"""Named tensors checked against a model card, and a model's outputs as named tensors.

Transport-free: the Open Inference Protocol adapter decodes wire tensors into numpy arrays, and
this module decides whether they fit the card. A tabular model takes either one numeric tensor
``input`` shaped [rows, features] (columns in card order) or one tensor per feature, named as in
the card, shaped [rows] or [rows, 1]. A text model takes one BYTES tensor named as its feature,
shaped [rows] or [rows, 1], UTF-8 text. Errors name the tensor as ``inputs[i]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from protoserve_models.card import ModelCard
from protoserve_models.inputs import InputLimits, check_row_count
from protoserve_models.model import PredictionBatch
from protoserve_runtime.errors import InvalidArgument

MATRIX_INPUT = "input"
# The outputs of each kind of model and their datatypes, in the order they are sent.
CLASSIFIER_OUTPUTS: Mapping[str, str] = MappingProxyType({"label": "BYTES", "probabilities": "FP64"})
REGRESSOR_OUTPUTS: Mapping[str, str] = MappingProxyType({"mean": "FP64", "variance": "FP64"})


@dataclass(frozen=True)
class TensorSpec:
    """What a model takes or gives: a tensor name, its datatype and shape (-1 = any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


class NamedTensor(NamedTuple):
    name: str
    array: np.ndarray  # numeric, or an object array of bytes for text


def input_specs(card: ModelCard) -> list[TensorSpec]:
    if card.is_text:
        return [TensorSpec(card.inputs[0].name, "BYTES", (-1,))]
    return [TensorSpec(MATRIX_INPUT, "FP64", (-1, len(card.inputs)))]


def output_specs(card: ModelCard) -> list[TensorSpec]:
    return [
        TensorSpec(name, datatype, (-1, len(card.labels)) if name == "probabilities" else (-1,))
        for name, datatype in output_datatypes(card).items()
    ]


def output_datatypes(card: ModelCard) -> Mapping[str, str]:
    """The model's outputs and their datatypes, by name, in the order they are sent."""
    return CLASSIFIER_OUTPUTS if card.task == "classification" else REGRESSOR_OUTPUTS


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


def tensors_to_inputs(card: ModelCard, tensors: Sequence[NamedTensor], limits: InputLimits) -> np.ndarray:
    """The model's input: a float64 matrix (rows × card features) or a 1-D object array of str."""
    if card.is_text:
        return _text_input(card, tensors, limits)
    if len(tensors) == 1 and tensors[0].name == MATRIX_INPUT:
        return _matrix_input(card, tensors[0], limits)
    return _feature_inputs(card, tensors, limits)


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
    """The named output tensors of a prediction (label as UTF-8 bytes)."""
    if card.task == "classification":
        assert outputs.probabilities is not None and outputs.label_indices is not None
        return {"label": _encoded(card.labels)[outputs.label_indices], "probabilities": outputs.probabilities}
    assert outputs.values is not None and outputs.variances is not None
    return {"mean": outputs.values, "variance": outputs.variances}


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

