"""Open Inference Protocol tensors: REST JSON (and the binary-data extension) <-> v2 gRPC messages.

Inputs always travel to the service as ``raw_input_contents`` (little-endian bytes, BYTES as
4-byte length prefixes), which the service decodes with ``np.frombuffer`` without copies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from inference import grpc_predict_v2_pb2 as v2

from gateway.errors import HttpError
from protoserve_runtime.oip_codec import CONTENTS_FIELDS, LENGTH_PREFIX, NUMPY_DTYPES, pack_bytes

# HTTP-only parameters of the binary-data extension: they steer this codec and are not forwarded.
_HTTP_ONLY = {"binary_data_size", "binary_data", "binary_data_output"}
_REQUEST_KEYS = {"id", "parameters", "inputs", "outputs"}
_INPUT_KEYS = {"name", "shape", "datatype", "parameters", "data"}


def _bad(message: str) -> HttpError:
    return HttpError(400, "INVALID_ARGUMENT", message)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{where} must be a JSON object")
    return value


def set_parameters(target: Any, params: Any, where: str) -> None:
    for key, value in _object(params, where).items():
        if key in _HTTP_ONLY:
            continue
        param = target[key]
        if isinstance(value, bool):
            param.bool_param = value
        elif isinstance(value, int):
            param.int64_param = value
        elif isinstance(value, float):
            param.double_param = value
        elif isinstance(value, str):
            param.string_param = value
        else:
            raise _bad(f"{where}.{key} must be a boolean, number or string")


def parameters_json(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: getattr(p, p.WhichOneof("parameter_choice")) for key, p in params.items() if p.WhichOneof("parameter_choice")}


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _encode_bytes(items: list[Any], where: str) -> bytes:
    if not all(isinstance(item, str) for item in items):
        raise _bad(f"{where} of a BYTES tensor must hold strings")
    return pack_bytes(item.encode("utf-8") for item in items)


def _encode(datatype: str, data: Any, count: int, where: str) -> bytes:
    items = _flatten(data)
    if len(items) != count:
        raise _bad(f"{where} holds {len(items)} elements but its shape needs {count}")
    if datatype == "BYTES":
        return _encode_bytes(items, where)
    if any(isinstance(v, (str, dict, type(None))) for v in items):
        raise _bad(f"{where} of a {datatype} tensor must hold numbers")
    if datatype == "BOOL" and not all(isinstance(v, bool) for v in items):
        raise _bad(f"{where} of a BOOL tensor must hold true or false")
    try:
        with np.errstate(over="raise", invalid="raise"):
            array = np.asarray(items, dtype=NUMPY_DTYPES[datatype])
        if datatype.startswith(("INT", "UINT")) and any(isinstance(v, float) and not float(v).is_integer() for v in items):
            raise ValueError("not a whole number")
    except (ValueError, OverflowError, FloatingPointError) as exc:
        raise _bad(f"{where} does not fit {datatype}: {exc}") from None
    return array.tobytes()


def build_infer_request(
    name: str, version: str, header: Any, binary: bytes
) -> tuple[v2.ModelInferRequest, set[str], bool]:
    """The gRPC request, the outputs asked for in binary, and whether all outputs go binary."""
    body = _object(header, "the body")
    unknown = set(body) - _REQUEST_KEYS
    if unknown:
        raise _bad(f"unknown field {sorted(unknown)[0]!r} in the request")
    request = v2.ModelInferRequest(model_name=name, model_version=version, id=str(body.get("id", "")))
    params = _object(body.get("parameters", {}), "parameters")
    set_parameters(request.parameters, params, "parameters")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _bad("inputs must be a non-empty list of tensors")
    offset = 0
    for i, item in enumerate(inputs):
        where = f"inputs[{i}]"
        tensor = _object(item, where)
        unknown = set(tensor) - _INPUT_KEYS
        if unknown:
            raise _bad(f"unknown field {sorted(unknown)[0]!r} in {where}")
        datatype, shape = tensor.get("datatype"), tensor.get("shape")
        if not isinstance(tensor.get("name"), str) or not tensor["name"]:
            raise _bad(f"{where}.name must be a non-empty string")
        if datatype not in NUMPY_DTYPES:
            raise _bad(f"{where}.datatype {datatype!r} is not an Open Inference Protocol datatype")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise _bad(f"{where}.shape must be a list of non-negative whole numbers")
        entry = request.inputs.add(name=tensor["name"], datatype=datatype, shape=shape)
        tparams = _object(tensor.get("parameters", {}), f"{where}.parameters")
        set_parameters(entry.parameters, tparams, f"{where}.parameters")
        size = tparams.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise _bad(f"{where}.parameters.binary_data_size does not match the binary data sent")
            request.raw_input_contents.append(binary[offset:offset + size])
            offset += size
        elif "data" not in tensor:
            raise _bad(f"{where} has neither data nor parameters.binary_data_size")
        else:
            request.raw_input_contents.append(_encode(datatype, tensor["data"], math.prod(shape), f"{where}.data"))
    if offset != len(binary):
        raise _bad(f"{len(binary) - offset} bytes of binary data are not claimed by any input")
    binary_outputs: set[str] = set()
    for j, item in enumerate(body.get("outputs") or []):
        out = _object(item, f"outputs[{j}]")
        if not isinstance(out.get("name"), str):
            raise _bad(f"outputs[{j}].name must be a string")
        wanted = request.outputs.add(name=out["name"])
        oparams = _object(out.get("parameters", {}), f"outputs[{j}].parameters")
        set_parameters(wanted.parameters, oparams, f"outputs[{j}].parameters")
        if oparams.get("binary_data") is True:
            binary_outputs.add(out["name"])
    return request, binary_outputs, params.get("binary_data_output") is True


def _decode_raw(datatype: str, raw: bytes) -> list[Any]:
    if datatype == "BYTES":
        items, pos = [], 0
        while pos + 4 <= len(raw):
            (n,) = LENGTH_PREFIX.unpack_from(raw, pos)
            items.append(raw[pos + 4:pos + 4 + n].decode("utf-8", errors="replace"))
            pos += 4 + n
        return items
    return np.frombuffer(raw, dtype=NUMPY_DTYPES[datatype]).tolist()


def _raw_of_contents(datatype: str, contents: v2.InferTensorContents) -> bytes:
    values = list(getattr(contents, CONTENTS_FIELDS[datatype]))
    if datatype == "BYTES":
        return pack_bytes(values)
    return np.asarray(values, dtype=NUMPY_DTYPES[datatype]).tobytes()


def infer_response(response: v2.ModelInferResponse, binary_outputs: set[str], all_binary: bool) -> tuple[dict[str, Any], bytes]:
    """The JSON body and the binary section (empty when no output is sent in binary)."""
    outputs, chunks = [], []
    for i, tensor in enumerate(response.outputs):
        if i < len(response.raw_output_contents):
            raw = response.raw_output_contents[i]
        else:
            raw = _raw_of_contents(tensor.datatype, tensor.contents)
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
        params = parameters_json(tensor.parameters)
        if all_binary or tensor.name in binary_outputs:
            params["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            entry["data"] = _decode_raw(tensor.datatype, raw)
        if params:
            entry["parameters"] = params
        outputs.append(entry)
    body: dict[str, Any] = {"model_name": response.model_name, "model_version": response.model_version, "outputs": outputs}
    if response.id:
        body["id"] = response.id
    if response.parameters:
        body["parameters"] = parameters_json(response.parameters)
    return body, b"".join(chunks)


def tensor_metadata(tensors: Any) -> list[dict[str, Any]]:
    return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in tensors]
