"""The Open Inference Protocol through tritonclient.grpc, unmodified: raw (its own way) and typed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from tests.harness import CONNECTIONS_FOR_EVERY_WORKER
from tests.inference.oip import card, matrix, reference, sample_rows

TABULAR = ["iris-knn", "regression-gp", "risk"]
TEXTS = ["I absolutely love this phone, the battery is amazing!", "Terrible service, cold food.", "It is a phone."]


@pytest.fixture(scope="module")
def client(inference_address: str) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(inference_address)
    yield client
    client.close()


@pytest.fixture(scope="module")
def v2_stub(inference_address: str) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(inference_address) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def assert_outputs(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for name, expected in want.items():
        if expected.dtype == object:
            assert got[name].tolist() == expected.tolist(), name
        else:
            np.testing.assert_array_equal(got[name], expected, err_msg=name)


def test_server_live_ready_metadata(client) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata.name == "protoserve" and "model_repository" in metadata.extensions
    for model in [*TABULAR, "sentiment"]:
        assert client.is_model_ready(model)
        assert client.is_model_ready(model, "1")


@pytest.mark.parametrize("model", TABULAR)
def test_tabular_metadata(client, model_repository: Path, model: str) -> None:
    meta = client.get_model_metadata(model)
    features = len(card(model_repository, model)["inputs"])
    assert meta.name == model and list(meta.versions) == ["1"]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("input", "FP64", [-1, features])]
    labels = card(model_repository, model)["labels"]
    outputs = [(t.name, t.datatype, list(t.shape)) for t in meta.outputs]
    if labels:
        assert outputs == [("label", "BYTES", [-1]), ("probabilities", "FP64", [-1, len(labels)])]
    else:
        assert outputs == [("mean", "FP64", [-1]), ("variance", "FP64", [-1])]


def test_sentiment_metadata(client) -> None:
    meta = client.get_model_metadata("sentiment")
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("text", "BYTES", [-1])]


@pytest.mark.parametrize("model", TABULAR)
@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_tabular_raw_matches_predict(client, inference_stub, model_repository: Path, model: str, datatype: str) -> None:
    rows = sample_rows(model_repository, model)
    data = matrix(model_repository, model, rows, np.float64 if datatype == "FP64" else np.float32)
    tensor = triton.InferInput("input", list(data.shape), datatype)
    tensor.set_data_from_numpy(data)
    result = client.infer(model, [tensor], request_id="req-7", parameters={"trace": "yes"})
    response = result.get_response()
    assert response.id == "req-7" and response.model_name == model and response.model_version == "1"
    assert response.parameters["trace"].string_param == "yes"
    assert len(response.raw_output_contents) == len(response.outputs)  # raw in, raw out
    names = [o.name for o in response.outputs]
    # The same core answers both APIs: equal to Predict on the same (float64) rows.
    exact_rows = [dict(zip(rows[0], row)) for row in data.astype(np.float64).tolist()]
    want = reference(inference_stub, model, exact_rows)
    assert_outputs({n: result.as_numpy(n) for n in names}, want)


def test_sentiment_bytes_raw(client, inference_stub) -> None:
    tensor = triton.InferInput("text", [len(TEXTS), 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[t.encode()] for t in TEXTS], dtype=object))
    result = client.infer("sentiment", [tensor])
    want = reference(inference_stub, "sentiment", [{"text": t} for t in TEXTS])
    assert_outputs({n: result.as_numpy(n) for n in ("label", "probabilities")}, want)
    assert result.as_numpy("label")[0] == b"positive"


def test_requested_outputs_only(client, model_repository: Path) -> None:
    rows = sample_rows(model_repository, "regression-gp", 3)
    data = matrix(model_repository, "regression-gp", rows)
    tensor = triton.InferInput("input", list(data.shape), "FP64")
    tensor.set_data_from_numpy(data)
    result = client.infer("regression-gp", [tensor], outputs=[triton.InferRequestedOutput("variance")])
    assert [o.name for o in result.get_response().outputs] == ["variance"]
    assert result.as_numpy("variance").shape == (3,) and (result.as_numpy("variance") >= 0).all()


def typed_request(model: str, tensors: list[tuple[str, str, list[int], str, list]]) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name=model, id="typed-1")
    for name, datatype, shape, field, values in tensors:
        tensor = request.inputs.add(name=name, datatype=datatype, shape=shape)
        getattr(tensor.contents, field).extend(values)
    return request


def typed_outputs(response: service_pb2.ModelInferResponse) -> dict[str, np.ndarray]:
    assert not response.raw_output_contents  # typed in, typed out
    out = {}
    for tensor in response.outputs:
        if tensor.datatype == "BYTES":
            out[tensor.name] = np.array(list(tensor.contents.bytes_contents), dtype=object).reshape(tensor.shape)
        else:
            out[tensor.name] = np.array(tensor.contents.fp64_contents).reshape(tensor.shape)
    return out


@pytest.mark.parametrize("model", TABULAR)
def test_tabular_typed_matrix_and_per_feature(v2_stub, inference_stub, model_repository: Path, model: str) -> None:
    rows = sample_rows(model_repository, model)
    data = matrix(model_repository, model, rows)
    want = reference(inference_stub, model, rows)
    request = typed_request(model, [("input", "FP64", list(data.shape), "fp64_contents", data.ravel().tolist())])
    response = v2_stub.ModelInfer(request, timeout=30)
    assert response.id == "typed-1"
    assert_outputs(typed_outputs(response), want)
    # One tensor per feature, named as in the card, in any order.
    names = list(rows[0])
    per_feature = [(n, "FP64", [len(rows), 1], "fp64_contents", [r[n] for r in rows]) for n in reversed(names)]
    assert_outputs(typed_outputs(v2_stub.ModelInfer(typed_request(model, per_feature), timeout=30)), want)


def test_sentiment_typed_bytes(v2_stub, inference_stub) -> None:
    request = typed_request("sentiment", [("text", "BYTES", [len(TEXTS)], "bytes_contents", [t.encode() for t in TEXTS])])
    got = typed_outputs(v2_stub.ModelInfer(request, timeout=30))
    assert_outputs(got, reference(inference_stub, "sentiment", [{"text": t} for t in TEXTS]))


def test_repository_index(client) -> None:
    index = client.get_model_repository_index()
    assert {(m.name, m.version, m.state) for m in index.models} >= {("iris-knn", "1", "READY"), ("sentiment", "1", "READY")}


def readiness_seen(address: str, model: str, connections: int = CONNECTIONS_FOR_EVERY_WORKER) -> set[bool]:
    """What several separate connections (spread over the workers) say about a model."""
    seen = set()
    for _ in range(connections):
        options = [("grpc.use_local_subchannel_pool", 1)]
        with grpc.insecure_channel(address, options=options) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            seen.add(stub.ModelReady(service_pb2.ModelReadyRequest(name=model), timeout=10).ready)
    return seen


def wait_until(condition) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.2)


def test_unload_and_load_reach_every_worker(client, v2_stub, inference_address: str) -> None:
    """The shared service runs a worker per CPU; a load or unload taken by one reaches all."""
    client.unload_model("risk")
    try:
        assert not client.is_model_ready("risk")
        wait_until(lambda: readiness_seen(inference_address, "risk") == {False})
        assert {m.name: m.state for m in client.get_model_repository_index().models}["risk"] == "UNAVAILABLE"
        ready = v2_stub.RepositoryIndex(service_pb2.RepositoryIndexRequest(ready=True), timeout=10)
        assert "risk" not in {m.name for m in ready.models}
    finally:
        client.load_model("risk")
    assert client.is_model_ready("risk")
    wait_until(lambda: readiness_seen(inference_address, "risk") == {True})
    assert error_of(lambda: client.load_model("no-such-model")).status() == "StatusCode.NOT_FOUND"
    assert error_of(lambda: client.unload_model("no-such-model")).status() == "StatusCode.NOT_FOUND"


def error_of(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value
