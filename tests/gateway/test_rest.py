"""REST routes derived from the protos: each answers what the gRPC call answers; bad input is 4xx."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from protoserve.inference.v1 import inference_service_pb2 as pb
from protoserve.inference.v1 import inference_service_pb2_grpc

from gateway.discovery import discover_routes
from gateway.errors import HTTP_STATUS
from gateway.settings import EXPLAIN_SERVICE, MONITORING_SERVICE
from gateway.transcode import to_json

IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
# One REST call per annotated RPC: (path, query, body). A new annotated RPC needs an entry here.
EXAMPLES: dict[str, list[tuple[str, dict[str, str], dict[str, Any] | None]]] = {
    "/protoserve.inference.v1.InferenceService/ListModels": [("/v1/models", {}, None)],
    "/protoserve.inference.v1.InferenceService/GetModel": [
        ("/v1/models/sentiment", {}, None), ("/v1/models/regression-gp", {"version": "1"}, None),
    ],
    "/protoserve.inference.v1.InferenceService/Predict": [
        ("/v1/models/iris-knn:predict", {}, {"rows": [IRIS_ROW]}),
        ("/v1/models/sentiment:predict", {}, {"rows": [{"text": "What a wonderful, moving film."}], "skip_cache": True}),
        ("/v1/models/regression-gp:predict", {}, {"rows": [{"age": 0.02, "bmi": 0.06, "bp": 0.02, "s5": 0.02}]}),
    ],
    "/protoserve.explain.v1.ExplainService/Explain": [
        ("/v1/models/sentiment:explain", {}, {"rows": [{"text": "A dull, lifeless film."}], "top_k": 3}),
    ],
    # Monitoring answers about a version named explicitly, so no traffic is needed; 24h buckets are
    # 24 minutes wide, so the REST and gRPC answers see the same timeline.
    "/protoserve.monitoring.v1.MonitoringService/GetModelMetrics": [
        ("/v1/models/iris-knn/metrics", {"version": "1", "window": "24h"}, None),
    ],
    "/protoserve.monitoring.v1.MonitoringService/GetDrift": [("/v1/models/iris-knn/drift", {"version": "1"}, None)],
    "/protoserve.monitoring.v1.MonitoringService/ListAlerts": [("/v1/alerts", {"model": "iris-knn"}, None)],
    "/protoserve.monitoring.v1.MonitoringService/RecordFeedback": [
        ("/v1/feedback", {}, {"prediction_id": "no-such-prediction", "label": "setosa"}),
    ],
    # No job worker runs beside these tests, so a submitted job stays QUEUED and answers alike
    # over both; the idempotency key makes the second submit return the first job.
    "/protoserve.jobs.v1.JobService/SubmitJob": [
        ("/v1/jobs", {}, {"model": "iris-knn", "rows": [IRIS_ROW], "idempotency_key": "rest-vs-grpc"}),
    ],
    "/protoserve.jobs.v1.JobService/ListJobs": [("/v1/jobs", {"page_size": "1"}, None)],
    "/protoserve.jobs.v1.JobService/GetJob": [("/v1/jobs/no-such-job", {}, None)],
    "/protoserve.jobs.v1.JobService/CancelJob": [("/v1/jobs/no-such-job", {}, None)],
    # ModelService on the shared service: each call is sent twice (REST, then gRPC), so each leaves
    # iris-knn (one version) served as before and answers alike both times.
    "/protoserve.models.v1.ModelService/ListVersions": [("/v1/models/iris-knn/versions", {}, None)],
    "/protoserve.models.v1.ModelService/LoadModel": [("/v1/models/iris-knn/versions/1:load", {}, {})],
    "/protoserve.models.v1.ModelService/UnloadModel": [("/v1/models/iris-knn/versions/1:unload", {}, {})],
    "/protoserve.models.v1.ModelService/PromoteVersion": [("/v1/models/iris-knn/versions/1:promote", {}, {})],
    "/protoserve.models.v1.ModelService/SetTraffic": [("/v1/models/iris-knn/traffic", {}, {"routes": []})],
    "/protoserve.models.v1.ModelService/SetVersionPolicy": [
        ("/v1/models/iris-knn/version-policy", {}, {"policy": {"all": {}}}),
    ],
    "/protoserve.models.v1.ModelService/TrainModel": [("/v1/models/no-such-model:train", {}, {})],
    "/protoserve.models.v1.ModelService/GetTrainingRun": [("/v1/training-runs/no-such-run", {}, None)],
}
# Examples that answer an error the same way over both: feedback needs a prediction the monitoring
# service has consumed (tests/monitoring covers the success).
# A known job's GetJob and CancelJob are compared in test_job_routes_answer_what_grpc_answers.
EXPECTED_ERRORS = {
    "/protoserve.monitoring.v1.MonitoringService/RecordFeedback": (404, grpc.StatusCode.NOT_FOUND),
    "/protoserve.jobs.v1.JobService/GetJob": (404, grpc.StatusCode.NOT_FOUND),
    "/protoserve.jobs.v1.JobService/CancelJob": (404, grpc.StatusCode.NOT_FOUND),
    "/protoserve.models.v1.ModelService/UnloadModel": (409, grpc.StatusCode.FAILED_PRECONDITION),  # the default
    "/protoserve.models.v1.ModelService/TrainModel": (404, grpc.StatusCode.NOT_FOUND),  # no such model
    "/protoserve.models.v1.ModelService/GetTrainingRun": (404, grpc.StatusCode.NOT_FOUND),
}


def _grpc_request(route_path: str, route: Any, query: dict[str, str], body: dict[str, Any] | None) -> Any:
    request = route.request_class()
    match = route.pattern.match(route_path)
    fields = dict(zip(route.path_fields, match.groups()))
    json_format.ParseDict({**(body or {}), **query, **fields}, request)
    return request


def test_every_annotated_rpc_has_an_example() -> None:
    assert {r.full_method for r in discover_routes()} <= set(EXAMPLES)


@pytest.mark.parametrize("route", discover_routes(), ids=lambda r: f"{r.http_method} {r.template}")
def test_rest_answers_what_grpc_answers(route: Any, http: httpx.Client, inference_address: str,
                                        explain_address: str, monitoring_address: str) -> None:
    addresses = {EXPLAIN_SERVICE: explain_address, MONITORING_SERVICE: monitoring_address}
    address = addresses.get(route.service, inference_address)
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(route.full_method, request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=route.response_class.FromString)
        for path, query, body in EXAMPLES[route.full_method]:
            response = http.request(route.http_method, path, params=query, json=body)
            if route.full_method in EXPECTED_ERRORS:
                status, code = EXPECTED_ERRORS[route.full_method]
                assert response.status_code == status, response.text
                with pytest.raises(grpc.RpcError) as refused:
                    call(_grpc_request(path, route, query, body), timeout=30)
                assert refused.value.code() == code
                continue
            assert response.status_code == (202 if route.full_method.endswith("/SubmitJob") else 200), response.text
            expected = to_json(call(_grpc_request(path, route, query, body), timeout=30))
            assert _without_ids(response.json()) == _without_ids(expected)


def _without_ids(answer: Any) -> Any:
    """Every prediction has its own id; the rest of two answers to one request is equal."""
    if isinstance(answer, dict) and "predictions" in answer:
        assert all(p.pop("prediction_id") for p in answer["predictions"])
    return answer


def test_job_routes_answer_what_grpc_answers(http: httpx.Client, inference_address: str) -> None:
    from protoserve.jobs.v1 import job_service_pb2 as jobs_pb
    from protoserve.jobs.v1 import job_service_pb2_grpc as jobs_grpc

    submitted = http.post("/v1/jobs", json={"model": "iris-knn", "rows": [IRIS_ROW, IRIS_ROW]})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job"]["job_id"]
    assert submitted.headers["location"] == f"/v1/jobs/{job_id}"
    unfinished = http.get(f"/v1/jobs/{job_id}/results")
    assert unfinished.status_code == 409 and "JOB_STATE_QUEUED" in unfinished.json()["message"]
    with grpc.insecure_channel(inference_address) as channel:
        stub = jobs_grpc.JobServiceStub(channel)
        cancelled = http.delete(f"/v1/jobs/{job_id}")
        assert cancelled.status_code == 200 and cancelled.json()["job"]["state"] == "JOB_STATE_CANCELLED"
        fetched = http.get(f"/v1/jobs/{job_id}")
        assert fetched.json() == to_json(stub.GetJob(jobs_pb.GetJobRequest(job_id=job_id), timeout=30))
        again = http.delete(f"/v1/jobs/{job_id}")  # a finished job cannot be cancelled
        assert again.status_code == 409 and again.json()["code"] == "FAILED_PRECONDITION"
        with pytest.raises(grpc.RpcError) as refused:
            stub.CancelJob(jobs_pb.CancelJobRequest(job_id=job_id), timeout=30)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_predict_field_names_and_defaults(http: httpx.Client) -> None:
    body = http.post("/v1/models/regression-gp:predict", json={"rows": [{"age": 0, "bmi": 0, "bp": 0, "s5": 0}]}).json()
    regression = body["predictions"][0]["regression"]
    assert set(regression) == {"value", "variance", "standard_deviation", "outputs"}  # outputs: [] for one output
    assert regression["standard_deviation"] > 0


def test_grpc_errors_map_to_http_with_field_details(http: httpx.Client) -> None:
    missing = http.get("/v1/models/no-such-model")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    bad = http.post("/v1/models/iris-knn:predict", json={"rows": [{**IRIS_ROW, "petal_width": "wide"}]})
    assert bad.status_code == 400
    error = bad.json()
    assert error["code"] == "INVALID_ARGUMENT"
    assert {"field": "rows[0].petal_width", "description": "expected a number, got a string"} in error["details"]


@pytest.mark.parametrize(
    ("content", "headers", "status", "words"),
    [
        (b'{"rows": [', {"content-type": "application/json"}, 400, "not valid JSON"),
        (b'\xff\xfe', {"content-type": "application/json"}, 400, "not UTF-8"),
        (b'[1, 2]', {"content-type": "application/json"}, 400, "must be a JSON object"),
        (b'{"rows": []}', {"content-type": "text/plain"}, 415, "application/json"),
        (b'{"rows": [], "colour": "red"}', {"content-type": "application/json"}, 422, "unknown field 'colour'"),
        (b'{"rows": 5}', {"content-type": "application/json"}, 400, "rows"),
        (b'{"skip_cache": "maybe"}', {"content-type": "application/json"}, 400, "skip_cache"),
        (b'{"rows": [{"a": 1}]}' + b" " * 70_000, {"content-type": "application/json"}, 413, "limit"),
    ],
)
def test_client_mistakes_are_4xx_with_a_message(http: httpx.Client, content: bytes, headers: dict[str, str],
                                                status: int, words: str) -> None:
    response = http.post("/v1/models/iris-knn:predict", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert words in response.json()["message"]


def test_oversize_body_without_content_length_is_413(http: httpx.Client) -> None:
    def chunks() -> Any:
        yield b'{"rows": ['
        for _ in range(100):
            yield b'{"x": "' + b"a" * 1000 + b'"},'
        yield b"{}]}"

    response = http.post("/v1/models/iris-knn:predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_routing_errors(http: httpx.Client) -> None:
    assert http.get("/v1/nothing-here").status_code == 404
    wrong_method = http.delete("/v1/models")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.json()["message"]
    assert http.get("/v1/models", params={"colour": "red"}).status_code == 422
    assert http.request("GET", "/v1/models/iris-knn", content=b"{}").status_code == 400


def test_status_table_covers_every_grpc_code() -> None:
    assert set(HTTP_STATUS) == set(grpc.StatusCode)
    assert {HTTP_STATUS[c] for c in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)} \
        == {401, 403, 429, 503, 504}


def test_gateway_health_and_pages_are_served(http: httpx.Client) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    assert "InferenceService_Predict" in http.get("/docs").text
    page = http.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert http.get("/static/app.js").status_code == 200


def test_grpc_stub_still_answers(inference_address: str) -> None:
    with grpc.insecure_channel(inference_address) as channel:
        stub = inference_service_pb2_grpc.InferenceServiceStub(channel)
        assert stub.ListModels(pb.ListModelsRequest(), timeout=10).models
