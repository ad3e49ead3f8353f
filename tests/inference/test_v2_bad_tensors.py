"""Bad Open Inference Protocol requests: INVALID_ARGUMENT or NOT_FOUND naming the problem."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from protoserve_runtime import health

IRIS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])


@pytest.fixture(scope="module")
def v2_stub(inference_address: str) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(inference_address) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def raw_request(model: str, name: str, datatype: str, shape: list[int], raw: bytes, **fields) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(**{"model_name": model, **fields})
    request.inputs.add(name=name, datatype=datatype, shape=shape)
    request.raw_input_contents.append(raw)
    return request


def iris(name: str = "input", datatype: str = "FP64", shape: list[int] | None = None, raw: bytes | None = None, **fields):
    return raw_request("iris-knn", name, datatype, shape or [2, 4], IRIS.tobytes() if raw is None else raw, **fields)


def bytes_tensor(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(i)) + i for i in items)


def typed_iris(values: list[float], shape: list[int], field: str = "fp64_contents", datatype: str = "FP64"):
    request = service_pb2.ModelInferRequest(model_name="iris-knn")
    tensor = request.inputs.add(name="input", datatype=datatype, shape=shape)
    getattr(tensor.contents, field).extend(values)
    return request


CASES = [
    (iris(name="features"), "INVALID_ARGUMENT", ["inputs[0].name", "'features'", "unknown input"]),
    (iris(datatype="FP99"), "INVALID_ARGUMENT", ["inputs[0].datatype", "unknown datatype 'FP99'"]),
    (iris(datatype="BYTES", raw=bytes_tensor(*[b"x"] * 8)), "INVALID_ARGUMENT", ["inputs[0].datatype", "BYTES given"]),
    (iris(shape=[2, 3], raw=IRIS[:, :3].tobytes()), "INVALID_ARGUMENT", ["inputs[0].shape", "[2, 3]", "[rows, 4]"]),
    (iris(shape=[8]), "INVALID_ARGUMENT", ["inputs[0].shape", "[8]"]),
    (iris(shape=[3, 4]), "INVALID_ARGUMENT", ["inputs[0].raw_input_contents", "64 bytes", "96 bytes expected"]),
    (iris(shape=[2, -4]), "INVALID_ARGUMENT", ["inputs[0].shape", "negative"]),
    (iris(shape=[0, 4], raw=b""), "INVALID_ARGUMENT", ["at least one row"]),
    (iris(raw=np.array([[np.nan] * 4] * 2).tobytes()), "INVALID_ARGUMENT", ["inputs[0].contents", "finite"]),
    (typed_iris([1.0] * 7, [2, 4]), "INVALID_ARGUMENT", ["inputs[0].contents", "7 values", "count 8"]),
    (typed_iris([1.0] * 8, [2, 4], "fp32_contents"), "INVALID_ARGUMENT", ["inputs[0].contents", "fp64_contents"]),
    (typed_iris([300] * 8, [2, 4], "int_contents", "INT8"), "INVALID_ARGUMENT", ["inputs[0].contents", "range of INT8"]),
    (iris(model_name="no-such-model"), "NOT_FOUND", ["no-such-model"]),
    (iris(model_name="Bad Name!"), "INVALID_ARGUMENT", ["model_name"]),
    (iris(model_version="9"), "NOT_FOUND", ["no version '9'"]),
    (iris(model_version="latest"), "INVALID_ARGUMENT", ["model_version"]),
    (raw_request("sentiment", "text", "BYTES", [2], bytes_tensor(b"good")), "INVALID_ARGUMENT",
     ["inputs[0].raw_input_contents", "ends before element 1"]),
    (raw_request("sentiment", "text", "BYTES", [1], bytes_tensor(b"\xff\xfe")), "INVALID_ARGUMENT",
     ["inputs[0].contents", "not UTF-8"]),
    (raw_request("sentiment", "text", "BYTES", [1], bytes_tensor(b"a" * 5001)), "INVALID_ARGUMENT",
     ["'text'", "5001 characters"]),
    (raw_request("sentiment", "text", "FP64", [1], b"\0" * 8), "INVALID_ARGUMENT", ["inputs[0].datatype", "BYTES"]),
    (raw_request("sentiment", "review", "BYTES", [1], bytes_tensor(b"ok")), "INVALID_ARGUMENT",
     ["inputs[0].name", "'review'", "takes 'text'"]),
]


@pytest.mark.parametrize(("request_", "code", "words"), CASES)
def test_bad_tensor_named(v2_stub, inference_address: str, request_, code: str, words: list[str]) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        v2_stub.ModelInfer(request_, timeout=10)
    assert caught.value.code().name == code
    for word in words:
        assert word in caught.value.details()
    health.wait_serving(inference_address, timeout=15)  # still (or again) serving: it did not fall over


def test_valid_requests_of_the_same_shapes_are_answered(v2_stub) -> None:
    assert v2_stub.ModelInfer(iris(), timeout=10).outputs
    assert v2_stub.ModelInfer(typed_iris([1] * 8, [2, 4], "int_contents", "INT8"), timeout=10).outputs
    assert v2_stub.ModelInfer(raw_request("sentiment", "text", "BYTES", [1], bytes_tensor(b"fine")), timeout=10).outputs


def test_requested_output_unknown(v2_stub) -> None:
    request = iris()
    request.outputs.add(name="mean")
    with pytest.raises(grpc.RpcError) as caught:
        v2_stub.ModelInfer(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "outputs[0].name" in caught.value.details() and "label, probabilities" in caught.value.details()


def test_raw_count_must_match_inputs(v2_stub) -> None:
    request = iris()
    request.raw_input_contents.append(b"")
    with pytest.raises(grpc.RpcError) as caught:
        v2_stub.ModelInfer(request, timeout=10)
    assert "raw_input_contents" in caught.value.details() and "2 raw contents for 1 inputs" in caught.value.details()


def test_metadata_of_unknown_model(v2_stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        v2_stub.ModelMetadata(service_pb2.ModelMetadataRequest(name="no-such-model"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and "no-such-model" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        v2_stub.ModelReady(service_pb2.ModelReadyRequest(name="iris-knn", version="9"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
