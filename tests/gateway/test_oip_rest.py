"""Open Inference Protocol REST through the gateway: tritonclient.http works unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from tests.gateway.conftest import GatewayProcess
from tests.inference.oip import matrix, reference, sample_rows


@pytest.fixture(scope="module")
def triton(gateway: GatewayProcess) -> Iterator[triton_http.InferenceServerClient]:
    client = triton_http.InferenceServerClient(gateway.address, network_timeout=30)
    yield client
    client.close()


def test_health_and_server_metadata(triton: Any) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.get_server_metadata()["name"] == "protoserve"
    assert triton.is_model_ready("iris-knn") and triton.is_model_ready("iris-knn", "1")
    assert not triton.is_model_ready("no-such-model")


def test_model_metadata(triton: Any) -> None:
    meta = triton.get_model_metadata("iris-knn")
    assert meta["name"] == "iris-knn" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    assert triton.get_model_metadata("iris-knn", "1") == meta


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_iris_matches_predict(triton: Any, inference_stub: Any, model_repository: Path, binary: bool) -> None:
    rows = sample_rows(model_repository, "iris-knn")
    data = matrix(model_repository, "iris-knn", rows)
    tensor = triton_http.InferInput("input", list(data.shape), "FP64")
    tensor.set_data_from_numpy(data, binary_data=binary)
    outputs = [triton_http.InferRequestedOutput(name, binary_data=binary) for name in ("label", "probabilities")]
    result = triton.infer("iris-knn", [tensor], outputs=outputs, request_id="r-1")
    want = reference(inference_stub, "iris-knn", rows)
    np.testing.assert_array_equal(result.as_numpy("probabilities"), want["probabilities"])
    # tritonclient gives BYTES as bytes from binary data and as str from JSON, as it does with Triton.
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").tolist()]
    assert labels == [v.decode() for v in want["label"].tolist()]
    assert result.get_response()["id"] == "r-1"


def test_infer_regression_without_requested_outputs(triton: Any, inference_stub: Any, model_repository: Path) -> None:
    rows = sample_rows(model_repository, "regression-gp")
    data = matrix(model_repository, "regression-gp", rows)
    tensor = triton_http.InferInput("input", list(data.shape), "FP64")
    tensor.set_data_from_numpy(data)
    result = triton.infer("regression-gp", [tensor], model_version="1")
    want = reference(inference_stub, "regression-gp", rows)
    np.testing.assert_allclose(result.as_numpy("mean"), want["mean"])
    np.testing.assert_allclose(result.as_numpy("variance"), want["variance"])


def test_json_tensors_for_text(http: httpx.Client) -> None:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                        "data": ["An absolute delight from start to finish.", "Broken on arrival, useless."]}]}
    response = http.post("/v2/models/sentiment/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["label"]["data"] == ["positive", "negative"]
    assert outputs["probabilities"]["shape"] == [2, 3]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3]}]}, 400, "elements"),
        ({"inputs": [{"name": "input", "datatype": "FP99", "shape": [1, 4], "data": [1, 2, 3, 4]}]}, 400, "datatype"),
        ({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": ["a", 2, 3, 4]}]}, 400, "numbers"),
        ({"inputs": []}, 400, "inputs"),
        ({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3, 4]}], "extra": 1}, 400, "extra"),
        ({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}]}, 400, ""),
    ],
)
def test_bad_tensors_answer_an_error_object(http: httpx.Client, body: Any, status: int, words: str) -> None:
    response = http.post("/v2/models/iris-knn/infer", json=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and words in response.json()["error"]


def test_errors_of_the_protocol(http: httpx.Client, triton: Any) -> None:
    missing = http.get("/v2/models/no-such-model")
    assert missing.status_code == 404 and "no-such-model" in missing.json()["error"]
    malformed = http.post("/v2/models/iris-knn/infer", content=b"{nope", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and "JSON" in malformed.json()["error"]
    typed = http.post("/v2/models/iris-knn/infer", content=b"{}", headers={"content-type": "text/csv"})
    assert typed.status_code == 415
    bad_header = http.post("/v2/models/iris-knn/infer", content=b"{}", headers={"inference-header-content-length": "99"})
    assert bad_header.status_code == 400
    with pytest.raises(InferenceServerException, match="no-such-model"):
        triton.get_model_metadata("no-such-model")


def test_repository_index(http: httpx.Client) -> None:
    index = http.post("/v2/repository/index", json={"ready": True})
    assert index.status_code == 200, index.text
    assert {"name": "iris-knn", "version": "1", "state": "READY", "reason": ""} in index.json()
    assert http.post("/v2/repository/index", json=[1]).status_code == 400
