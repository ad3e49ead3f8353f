"""Bad input gets INVALID_ARGUMENT naming the field, or NOT_FOUND; the server stays healthy."""

from __future__ import annotations

import math

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from protoserve.inference.v1 import inference_service_pb2 as pb

from protoserve_runtime import health
from tests.inference.rows import predict_request

IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def call_error(stub, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request, timeout=10)
    return caught.value


def field_violations(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None, "INVALID_ARGUMENT carries a google.rpc.Status with details"
    fields = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        assert detail.Unpack(bad_request)
        fields += [v.field for v in bad_request.field_violations]
    return fields


@pytest.mark.parametrize(
    ("rows", "field", "words"),
    [
        ([{k: v for k, v in IRIS_ROW.items() if k != "petal_width"}], "rows[0].petal_width", "missing"),
        ([{**IRIS_ROW, "colour": 1.0}], "rows[0].colour", "unknown feature"),
        ([{**IRIS_ROW, "sepal_width": "wide"}], "rows[0].sepal_width", "expected a number"),
        ([IRIS_ROW, {**IRIS_ROW, "sepal_width": True}], "rows[1].sepal_width", "expected a number"),
        ([{**IRIS_ROW, "sepal_width": None}], "rows[0].sepal_width", "expected a number"),
        ([{**IRIS_ROW, "sepal_width": [1.0]}], "rows[0].sepal_width", "expected a number"),
        ([{**IRIS_ROW, "petal_length": math.nan}], "rows[0].petal_length", "finite"),
        ([{**IRIS_ROW, "petal_length": math.inf}], "rows[0].petal_length", "finite"),
        ([], "rows", "at least one row"),
    ],
)
def test_invalid_rows_name_the_field(inference_stub, rows, field: str, words: str) -> None:
    error = call_error(inference_stub, predict_request("iris-knn", rows))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details() and words in error.details()
    assert field in field_violations(error)


def test_text_too_long(inference_stub) -> None:
    error = call_error(inference_stub, predict_request("sentiment", [{"text": "a" * 5001}]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "rows[0].text" in error.details() and "5001 characters" in error.details()


def test_text_must_be_a_string(inference_stub) -> None:
    error = call_error(inference_stub, predict_request("sentiment", [{"text": 3.0}]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "rows[0].text: expected a string" in error.details()


def test_a_value_with_no_kind_is_invalid_not_internal(inference_stub) -> None:
    request = predict_request("iris-knn", [IRIS_ROW])
    request.rows[0].fields["sepal_width"].Clear()  # what a client that fills no oneof sends
    error = call_error(inference_stub, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "rows[0].sepal_width: expected a number, got null" in error.details()


def test_too_many_rows(inference_stub) -> None:
    error = call_error(inference_stub, predict_request("iris-knn", [IRIS_ROW] * 10_001))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "10001 rows is over the limit of 10000" in error.details()


def test_many_bad_rows_are_reported_together_but_bounded(inference_stub) -> None:
    rows = [{**IRIS_ROW, "sepal_width": "x"} for _ in range(100)]
    error = call_error(inference_stub, predict_request("iris-knn", rows))
    assert "(and 19 more)" in error.details()
    assert len(field_violations(error)) == 20


@pytest.mark.parametrize(
    ("model", "version", "code", "words"),
    [
        ("no-such-model", "", grpc.StatusCode.NOT_FOUND, "model 'no-such-model' not found"),
        ("iris-knn", "7", grpc.StatusCode.NOT_FOUND, "has no version '7'"),
        ("../../etc/passwd", "", grpc.StatusCode.INVALID_ARGUMENT, "model: "),
        ("iris-knn", "../1", grpc.StatusCode.INVALID_ARGUMENT, "version: "),
        ("iris-knn", "latest", grpc.StatusCode.INVALID_ARGUMENT, "not a version"),
        ("", "", grpc.StatusCode.INVALID_ARGUMENT, "model: "),
    ],
)
def test_unknown_or_malformed_model_and_version(inference_stub, model, version, code, words) -> None:
    error = call_error(inference_stub, predict_request(model, [IRIS_ROW], version=version))
    assert error.code() == code
    assert words in error.details()
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.GetModel(pb.GetModelRequest(model=model, version=version), timeout=10)
    assert caught.value.code() == code


def test_a_burst_of_malformed_requests_leaves_the_server_healthy(inference_stub, inference_address) -> None:
    bad = [
        predict_request("iris-knn", [{"sepal_length": "x"}] * 50),
        predict_request("sentiment", [{"text": None}]),
        predict_request("nope", [IRIS_ROW]),
        predict_request("regression-gp", [{"age": math.nan, "bmi": 1, "bp": 1, "s5": 1}]),
        pb.PredictRequest(model="iris-knn"),
    ]
    futures = [inference_stub.Predict.future(bad[i % len(bad)], timeout=30) for i in range(500)]
    codes = set()
    for future in futures:
        with pytest.raises(grpc.RpcError) as caught:
            future.result()
        codes.add(caught.value.code())
    assert codes == {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
    health.wait_serving(inference_address, timeout=15)  # still (or again) serving: it did not fall over
    ok = inference_stub.Predict(predict_request("iris-knn", [IRIS_ROW]), timeout=10)
    assert ok.predictions[0].classification.label == "setosa"
