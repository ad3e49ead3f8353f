"""A user's own model trained again by the whole system: predictions of a DataFrame pipeline (numbers
with gaps, categorical strings) get their true answers through monitoring, a training run started
over REST learns from that feedback with the model's own pipeline, and the new version serves what
its estimator predicts. Bad training requests get 400 naming the field."""

from __future__ import annotations

import base64
import functools
import time
from dataclasses import replace
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from protoserve.inference.v1 import inference_service_pb2 as pb
from protoserve.inference.v1 import inference_service_pb2_grpc as pb_grpc
from protoserve.monitoring.v1 import monitoring_service_pb2 as monitoring_pb
from protoserve.monitoring.v1 import monitoring_service_pb2_grpc as monitoring_grpc

from protoserve_models.loading import read_estimator
from protoserve_models.repository import PROJECT_TRUSTED_TYPES
from tests.inference.rows import predict_request
from tests.monitoring.system import wait_until
from tests.served.conftest import Served, add
from tests.served.shapes import Shape, json_rows

MODEL = "penguins-feedback"


@pytest.fixture(scope="module")
def model(shapes: dict[str, Shape], served: Served) -> Shape:
    """The penguins pipeline added under a name of its own (its versions change here)."""
    shape = replace(shapes["penguins"], name=MODEL)
    result = add(shape, served.repository)
    assert result.returncode == 0, result.stderr
    with grpc.insecure_channel(served.inference.address) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)

        def ready() -> bool:
            try:
                versions = stub.GetModel(pb.GetModelRequest(model=MODEL), timeout=10).versions
            except grpc.RpcError:
                return False
            return any(v.state == 2 for v in versions)  # READY

        wait_until(ready, 60, f"{MODEL} to load")
    return shape


def train(served: Served, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{served.gateway.url}/v1/models/{MODEL}:train", json=body, timeout=60)


def wait_run(served: Served, run_id: str, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = httpx.get(f"{served.gateway.url}/v1/training-runs/{run_id}", timeout=10).json()["run"]
        if run["state"] in ("TRAINING_RUN_STATE_SUCCEEDED", "TRAINING_RUN_STATE_FAILED"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"training run {run_id} did not finish in {timeout} s")


def test_a_users_model_learns_from_feedback_with_its_own_pipeline(model: Shape, served: Served) -> None:
    frame = model.features
    truth = model.predict(frame)  # the species as the first version says them, every row answerable
    # The true answers tell something new the columns can learn: Torgersen's penguins are called Chinstrap.
    torgersen = (frame["island"] == "Torgersen").to_numpy()
    species = np.where(torgersen, "Chinstrap", truth)
    ids: list[str] = []
    with grpc.insecure_channel(served.inference.address) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)
        rows = json_rows(frame)
        for start in range(0, len(rows), 50):
            response = stub.Predict(predict_request(MODEL, rows[start : start + 50]), timeout=60)
            ids.extend(p.prediction_id for p in response.predictions)
    with grpc.insecure_channel(served.monitoring.address) as channel:
        monitoring = monitoring_grpc.MonitoringServiceStub(channel)

        def record(prediction_id: str, label: str) -> bool:
            try:
                monitoring.RecordFeedback(monitoring_pb.RecordFeedbackRequest(prediction_id=prediction_id, label=label),
                                          timeout=10)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                    return False  # its event is not consumed yet
                raise
            return True

        for prediction_id, label in zip(ids, species.tolist(), strict=True):
            wait_until(functools.partial(record, prediction_id, str(label)), what="the prediction to be logged")

    started = train(served, {"data": {"feedback": True}, "promotion": "PROMOTION_MODE_MANUAL"})
    assert started.status_code == 200, started.text
    run = wait_run(served, started.json()["run_id"])
    assert run["state"] == "TRAINING_RUN_STATE_SUCCEEDED", run.get("error")
    assert run["recipe"] == "refit" and run["data"]["rows_by_source"] == {"feedback": str(len(frame))}
    assert run["promotion"]["promoted"] is False and run["version"] == "2"
    # The new version learned it (the first version says Adelie for every one of them).
    fitted = read_estimator(served.repository / MODEL / "2" / "model.skops", PROJECT_TRUSTED_TYPES)
    assert type(fitted.steps[-1][1]).__name__ == "LogisticRegression"
    assert not np.any(truth[torgersen] == "Chinstrap")
    assert float(np.mean(fitted.predict(frame)[torgersen] == "Chinstrap")) > 0.8
    # Served by version (once loaded), it answers what its estimator predicts, missing values and categories included.
    with grpc.insecure_channel(served.inference.address) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)

        def loaded() -> bool:
            versions = stub.GetModel(pb.GetModelRequest(model=MODEL), timeout=10).versions
            return any(v.version == "2" and v.state == 2 for v in versions)  # READY

        wait_until(loaded, 60, f"version 2 of {MODEL} to load")
    requests = model.requests()
    response = httpx.post(f"{served.gateway.url}/v1/models/{MODEL}:predict",
                          json={"version": "2", "rows": json_rows(requests)}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == "2"
    assert [p["classification"]["label"] for p in response.json()["predictions"]] == [str(v) for v in fitted.predict(requests)]


@pytest.mark.parametrize(("body", "field"), [
    ({"data": {"feedback": True}, "parameters": {"logisticregression__nope": 1}}, "parameters.logisticregression__nope"),
    ({"data": {"feedback": True}, "parameters": {"logisticregression__C": -1}}, "parameters.logisticregression__C"),
    ({"data": {"csv": base64.b64encode(b"island,species\nDream,Adelie\n").decode()}}, "data.csv"),
    ({"data": {"feedback": True}, "recipe": "sklearn.linear_model.LogisticRegression"}, "recipe"),
    ({"data": {"builtin": True}}, "data.builtin"),
])
def test_bad_training_requests_get_400_naming_the_field(model: Shape, served: Served, body: dict[str, Any],
                                                        field: str) -> None:
    response = train(served, body)
    assert response.status_code == 400, response.text
    assert field in response.text
