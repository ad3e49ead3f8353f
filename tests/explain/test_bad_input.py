"""Bad Explain requests get the codes Predict gives; too costly ones RESOURCE_EXHAUSTED naming the limit."""

from __future__ import annotations

import grpc
import pytest

from protoserve_runtime import health
from tests.explain.calls import explain_request
from tests.inference.test_bad_input import IRIS_ROW, field_violations

GP_ROW = {"age": 50.0, "bmi": 30.0, "bp": 100.0, "s5": 5.0}


def explain_error(stub, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Explain(request, timeout=30)
    return caught.value


@pytest.mark.parametrize(
    ("model", "rows", "label", "field", "words"),
    [
        ("iris-knn", [{k: v for k, v in IRIS_ROW.items() if k != "petal_width"}], "", "rows[0].petal_width", "missing"),
        ("iris-knn", [{**IRIS_ROW, "colour": 1.0}], "", "rows[0].colour", "unknown feature"),
        ("iris-knn", [IRIS_ROW, {**IRIS_ROW, "sepal_width": "wide"}], "", "rows[1].sepal_width", "expected a number"),
        ("iris-knn", [], "", "rows", "at least one row"),
        ("sentiment", [{"text": 3.0}], "", "rows[0].text", "expected a string"),
        ("sentiment", [{"text": "a" * 5001}], "", "rows[0].text", "5001 characters"),
        ("sentiment", [{"text": "fine"}], "happy", "label", "not a label of model 'sentiment'"),
        ("regression-gp", [GP_ROW], "high", "label", "regressor and has no labels"),
        ("Not A Model", [IRIS_ROW], "", "model", "is not a model name"),
    ],
)
def test_invalid_requests_name_the_field(explain_stub, model, rows, label, field, words) -> None:
    error = explain_error(explain_stub, explain_request(model, rows, label=label))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details() and words in error.details()
    assert field in field_violations(error)


def test_unknown_model_and_version(explain_stub) -> None:
    assert explain_error(explain_stub, explain_request("no-such-model", [IRIS_ROW])).code() == grpc.StatusCode.NOT_FOUND
    request = explain_request("iris-knn", [IRIS_ROW])
    request.version = "7"
    assert explain_error(explain_stub, request).code() == grpc.StatusCode.NOT_FOUND


def test_too_costly_is_refused_naming_the_limit(explain_stub, explain_address: str) -> None:
    # 100 texts x ~42,000 n-gram and lexicon features is over the default cost limit of 1,000,000.
    error = explain_error(explain_stub, explain_request("sentiment", [{"text": "fine"}] * 100))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "PROTOSERVE_EXPLAIN_MAX_COST=1,000,000" in error.details()
    assert "rows 100 x features" in error.details()
    # Exact SHAP: 2^4 coalitions x 100 background rows make each row cost 1,600.
    error = explain_error(explain_stub, explain_request("iris-knn", [IRIS_ROW] * 630))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    health.wait_serving(explain_address, timeout=15)  # still (or again) serving: it did not fall over
    assert len(explain_stub.Explain(explain_request("iris-knn", [IRIS_ROW] * 2), timeout=30).explanations) == 2
