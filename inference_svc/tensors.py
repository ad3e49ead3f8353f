"""The Open Inference Protocol tensor codec: wire tensors <-> numpy arrays.

Inputs come either typed (``contents``) or raw (``raw_input_contents``: little-endian bytes,
BYTES elements each prefixed by a 4-byte little-endian length). Raw numeric inputs are decoded
with ``np.frombuffer`` (no copy). Every problem is an InvalidArgument naming the tensor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from inference import grpc_predict_v2_pb2 as v2

from inference_svc.tensor_inputs import NamedTensor, tensor_error
from protoserve_runtime.errors import InvalidArgument
from protoserve_runtime.oip_codec import CONTENTS_FIELDS, INTEGER_RANGES, LENGTH_PREFIX, NUMPY_DTYPES, encode_raw

InputTensor = v2.ModelInferRequest.InferInputTensor

def decode_inputs(request: v2.ModelInferRequest) -> tuple[list[NamedTensor], bool]:
    """All input tensors of a request as arrays shaped as it says (BYTES as object arrays of
    bytes), and whether they came raw."""
    raw = request.raw_input_contents
    inputs = request.inputs
    if raw and len(raw) != len(inputs):
        raise InvalidArgument.for_field(
            "raw_input_contents",
            f"{len(raw)} raw contents for {len(inputs)} inputs; give one per input, in order",
        )
    if not inputs:
        raise InvalidArgument.for_field("inputs", "at least one input tensor is needed")
    decoded = []
    seen: set[str] = set()
    for i, tensor in enumerate(inputs):
        if tensor.name in seen:
            raise tensor_error(i, tensor.name, "name", "appears more than once")
        seen.add(tensor.name)
        decoded.append(decode_input(i, tensor, raw[i] if raw else None))
    return decoded, bool(raw)


def decode_input(index: int, tensor: Any, raw: bytes | None) -> NamedTensor:
    name, datatype = tensor.name, tensor.datatype
    dtype = NUMPY_DTYPES.get(datatype)
    if dtype is None:
        raise tensor_error(index, name, "datatype", f"unknown datatype {datatype!r}; use one of {', '.join(NUMPY_DTYPES)}")
    shape = tuple(tensor.shape)
    if not shape or min(shape) < 0:
        raise tensor_error(index, name, "shape", f"shape {list(shape)} must list one or more dimensions, none negative")
    count = math.prod(shape)
    if raw is not None:
        if tensor.HasField("contents"):
            raise tensor_error(index, name, "contents", "give contents or raw_input_contents, not both")
        array = _decode_raw(index, name, datatype, dtype, raw, count)
    else:
        array = _decode_contents(index, name, datatype, dtype, tensor, count)
    return NamedTensor(name, array.reshape(shape))


def _decode_raw(index: int, name: str, datatype: str, dtype: np.dtype[Any], raw: bytes, count: int) -> np.ndarray:
    if datatype == "BYTES":
        return _split_bytes(index, name, raw, count)
    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise tensor_error(
            index, name, "raw_input_contents",
            f"{len(raw)} bytes do not match shape and datatype {datatype} ({expected} bytes expected)",
        )
    return np.frombuffer(raw, dtype=dtype)


def _split_bytes(index: int, name: str, raw: bytes, count: int) -> np.ndarray:
    out = np.empty(count, dtype=object)
    offset, size = 0, len(raw)
    for k in range(count):
        if offset + 4 > size:
            raise tensor_error(index, name, "raw_input_contents", f"ends before element {k} of {count}")
        (length,) = LENGTH_PREFIX.unpack_from(raw, offset)
        offset += 4
        if offset + length > size:
            raise tensor_error(index, name, "raw_input_contents", f"element {k} claims {length} bytes past the end")
        out[k] = raw[offset:offset + length]
        offset += length
    if offset != size:
        raise tensor_error(index, name, "raw_input_contents", f"{size - offset} bytes left after {count} elements")
    return out


def _decode_contents(index: int, name: str, datatype: str, dtype: np.dtype[Any], tensor: Any, count: int) -> np.ndarray:
    field = CONTENTS_FIELDS.get(datatype)
    if field is None:
        raise tensor_error(index, name, "contents", f"{datatype} travels only in raw_input_contents")
    contents = tensor.contents
    given = [f.name for f, _ in contents.ListFields()]
    if given and given != [field]:
        raise tensor_error(index, name, "contents", f"a {datatype} tensor carries its data in {field}, not {', '.join(given)}")
    values = getattr(contents, field)
    if len(values) != count:
        raise tensor_error(index, name, "contents", f"{len(values)} values do not match shape (count {count})")
    if datatype == "BYTES":
        out = np.empty(count, dtype=object)
        out[:] = list(values)
        return out
    limits = INTEGER_RANGES.get(datatype)
    if limits is None:  # floats and booleans: every value fits
        return np.fromiter(values, dtype=dtype, count=count)
    wide = np.fromiter(values, dtype=np.uint64 if datatype == "UINT64" else np.int64, count=count)
    if count and (wide.min() < limits.min or wide.max() > limits.max):
        raise tensor_error(index, name, "contents", f"a value is out of the range of {datatype}")
    return wide.astype(dtype)


def encode_output(response: Any, name: str, datatype: str, array: np.ndarray, raw: bool) -> None:
    """Add one output tensor to response, its data in contents or in raw_output_contents."""
    tensor = response.outputs.add(name=name, datatype=datatype, shape=array.shape)
    if raw:
        response.raw_output_contents.append(encode_raw(datatype, array))
        return
    getattr(tensor.contents, CONTENTS_FIELDS[datatype]).extend(array.reshape(-1).tolist())
