"""Each shape of model a user brings, added with the command, answers over gRPC Predict, the Open
Inference Protocol and REST exactly what its estimator answers locally; it can be explained, its
traffic shows drift, its jobs run; a broken version fails alone, and a new version loads by itself."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as triton
from google.protobuf import struct_pb2
from protoserve.common.v1 import prediction_pb2
from protoserve.explain.v1 import explain_service_pb2 as explain_pb
from protoserve.explain.v1 import explain_service_pb2_grpc as explain_grpc
from protoserve.inference.v1 import inference_service_pb2 as pb
from protoserve.inference.v1 import inference_service_pb2_grpc as pb_grpc
from protoserve.jobs.v1 import job_service_pb2 as jobs_pb
from protoserve.jobs.v1 import job_service_pb2_grpc as jobs_grpc
from protoserve.monitoring.v1 import monitoring_service_pb2 as monitoring_pb
from protoserve.monitoring.v1 import monitoring_service_pb2_grpc as monitoring_grpc

from tests.monitoring.system import wait_until
from tests.served.conftest import BROKEN, Served, add
from tests.served.shapes import BUILDERS, NUMERIC, Shape, json_rows, json_value

SHAPE_NAMES = ["penguins", "penguins-hgb", "diabetes-forest", "wine-svc", "cancer-outliers", "penguin-clusters",
               "review-text", "penguins-typed", "linnerud", "iris-mlflow-skops", "iris-mlflow-cloudpickle", "iris-numpy"]
assert len(SHAPE_NAMES) == len(BUILDERS)
REGRESSION_RTOL = 1e-9


@pytest.fixture(scope="module")
def channel(served: Served) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(served.inference.address) as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.InferenceServiceStub:
    return pb_grpc.InferenceServiceStub(channel)


def local_answers(shape: Shape, frame: pd.DataFrame) -> list[Any]:
    """What the estimator itself says, in the form protoserve answers it."""
    predicted = np.asarray(shape.predict(frame))
    if shape.task == "anomaly_detection":
        return ["outlier" if v == -1 else "inlier" for v in predicted.tolist()]
    if shape.task == "clustering":
        return [int(v) for v in predicted.tolist()]
    if shape.task == "regression":
        return [tuple(np.atleast_1d(v).tolist()) for v in predicted]
    return [str(v) for v in predicted.tolist()]


def answer(prediction: prediction_pb2.Prediction) -> Any:
    kind = prediction.WhichOneof("result")
    if kind == "classification":
        return prediction.classification.label
    if kind == "anomaly":
        return prediction.anomaly.label
    if kind == "cluster":
        return int(prediction.cluster.cluster)
    regression = prediction.regression
    return tuple(o.value for o in regression.outputs) if regression.outputs else (regression.value,)


def rest_answer(prediction: dict[str, Any]) -> Any:
    if "classification" in prediction:
        return prediction["classification"]["label"]
    if "anomaly" in prediction:
        return prediction["anomaly"]["label"]
    if "cluster" in prediction:
        return int(prediction["cluster"]["cluster"])
    regression = prediction["regression"]
    return tuple(o["value"] for o in regression["outputs"]) if regression.get("outputs") else (regression["value"],)


def assert_same(task: str, served: Sequence[Any], local: Sequence[Any]) -> None:
    assert len(served) == len(local)
    if task == "regression":
        assert np.allclose(np.array(served, dtype=np.float64), np.array(local, dtype=np.float64), rtol=REGRESSION_RTOL)
    else:
        assert list(served) == list(local)


def predict_request(name: str, rows: list[dict[str, Any]]) -> pb.PredictRequest:
    request = pb.PredictRequest(model=name, skip_cache=True)
    for row in rows:
        struct = struct_pb2.Struct()
        struct.update(row)
        request.rows.append(struct)
    return request


def test_each_shape_was_added_by_the_command(added: dict[str, str], stub: pb_grpc.InferenceServiceStub) -> None:
    for name in SHAPE_NAMES:
        assert f"{name} version 1" in added[name], added[name]
        model = stub.GetModel(pb.GetModelRequest(model=name), timeout=30)
        states = {v.version: v.state for v in model.versions}
        assert states == {"1": 2}, (name, model.versions)  # MODEL_VERSION_STATE_READY


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_grpc_predict_answers_as_the_estimator(name: str, shapes: dict[str, Shape], stub: pb_grpc.InferenceServiceStub) -> None:
    shape = shapes[name]
    frame = shape.requests()
    response = stub.Predict(predict_request(name, json_rows(frame)), timeout=60)
    assert_same(shape.task, [answer(p) for p in response.predictions], local_answers(shape, frame))


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_rest_predict_answers_as_the_estimator(name: str, shapes: dict[str, Shape], served: Served) -> None:
    shape = shapes[name]
    frame = shape.requests()
    response = httpx.post(f"{served.gateway.url}/v1/models/{name}:predict", json={"rows": json_rows(frame)}, timeout=60)
    assert response.status_code == 200, response.text
    assert_same(shape.task, [rest_answer(p) for p in response.json()["predictions"]], local_answers(shape, frame))


def _column_tensor(name: str, datatype: str, values: list[Any]) -> triton.InferInput:
    tensor = triton.InferInput(name, [len(values)], datatype)
    if datatype == "BYTES":
        array = np.array([str(v).encode() for v in values], dtype=np.object_)
    elif datatype == "BOOL":
        array = np.array(values, dtype=bool)
    elif datatype == "INT64":
        array = np.array(values, dtype=np.int64)
    else:
        array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    tensor.set_data_from_numpy(array)
    return tensor


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_open_inference_protocol_answers_as_the_estimator(name: str, shapes: dict[str, Shape], served: Served) -> None:
    """tritonclient, one tensor per column with the datatype the model metadata names."""
    shape = shapes[name]
    frame = shape.requests()
    client = triton.InferenceServerClient(served.inference.address)
    try:
        metadata = client.get_model_metadata(name)
        inputs = []
        for spec in metadata.inputs:
            if spec.name == "input":  # the matrix of a numpy model of numbers
                tensor = triton.InferInput("input", [len(frame), frame.shape[1]], "FP64")
                tensor.set_data_from_numpy(frame.to_numpy(dtype=np.float64))
                inputs.append(tensor)
            else:
                inputs.append(_column_tensor(spec.name, spec.datatype, [json_value(v) for v in frame[spec.name].tolist()]))
        result = client.infer(name, inputs)
        outputs = {o.name for o in metadata.outputs}
        if shape.task == "regression":
            served_answers = [tuple(np.atleast_1d(v).tolist()) for v in result.as_numpy("mean")]
        elif shape.task == "clustering":
            served_answers = [int(v) for v in result.as_numpy("cluster")]
        else:
            served_answers = [v.decode() for v in result.as_numpy("label")]
        assert_same(shape.task, served_answers, local_answers(shape, frame))
        if shape.task == "anomaly_detection":
            assert outputs == {"label", "score"}
    finally:
        client.close()


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_each_shape_is_explained_per_column(name: str, shapes: dict[str, Shape], served: Served) -> None:
    shape = shapes[name]
    row = json_rows(shape.requests(4))[1:2]
    with grpc.insecure_channel(served.explain.address) as channel:
        request = explain_pb.ExplainRequest(model=name)
        struct = struct_pb2.Struct()
        struct.update(row[0])
        request.rows.append(struct)
        response = explain_grpc.ExplainServiceStub(channel).Explain(request, timeout=120)
    explanation = response.explanations[0]
    if name == "review-text":
        assert any(a.kind == explain_pb.ATTRIBUTION_KIND_TOKEN for a in explanation.attributions)
    else:
        assert {a.name for a in explanation.attributions} == set(shape.features.columns)
    total = explanation.base_value + sum(a.value for a in explanation.attributions)
    assert abs(total - explanation.output_value) < 1e-6 * max(1.0, abs(explanation.output_value))
    if name == "penguins":
        island = next(a for a in explanation.attributions if a.name == "island")
        assert island.feature_text == row[0]["island"]  # a category is shown as itself


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_each_shape_shows_drift_per_column(name: str, shapes: dict[str, Shape], served: Served,
                                           stub: pb_grpc.InferenceServiceStub) -> None:
    """The live rows of every shape are compared with its card's reference sample, column by
    column: numbers by PSI and KS, categories (strings, booleans) by chi-squared."""
    shape = shapes[name]
    stub.Predict(predict_request(name, json_rows(shape.requests(30))), timeout=60)
    with grpc.insecure_channel(served.monitoring.address) as channel:
        monitoring = monitoring_grpc.MonitoringServiceStub(channel)

        def judged() -> Any:
            report = monitoring.GetDrift(monitoring_pb.GetDriftRequest(model=name, version="1", window="5m"), timeout=30)
            return report if report.row_count >= 20 else None

        report = wait_until(judged, 60, f"{name}'s rows to reach monitoring")
    features = {f.feature: f for f in report.features}
    assert set(features) == set(shape.features.columns)
    for feature in features.values():
        assert not feature.insufficient_data and feature.bins
        categorical = shape.features[feature.feature].dtype.kind in "OSUb" or str(shape.features[feature.feature].dtype) in (
            "category", "str", "string")
        if name == "review-text":
            assert {t.name for t in feature.tests} >= {"length_psi", "oov_rate"}
        elif categorical:
            assert feature.kind == monitoring_pb.FEATURE_KIND_CATEGORICAL and "chi2" in {t.name for t in feature.tests}
        else:
            assert feature.kind == monitoring_pb.FEATURE_KIND_NUMERIC and "ks" in {t.name for t in feature.tests}


def test_drift_of_a_categorical_column_is_seen(shapes: dict[str, Shape], served: Served,
                                                stub: pb_grpc.InferenceServiceStub) -> None:
    """Only penguins from one island: the island column drifts (chi-squared), as monitoring shows."""
    shape = shapes["penguins"]
    dream = shape.features[shape.features["island"] == "Dream"]
    for _ in range(3):
        stub.Predict(predict_request("penguins", json_rows(dream)), timeout=60)
    with grpc.insecure_channel(served.monitoring.address) as channel:
        monitoring = monitoring_grpc.MonitoringServiceStub(channel)

        def drift() -> Any:
            report = monitoring.GetDrift(monitoring_pb.GetDriftRequest(model="penguins", version="1", window="5m"), timeout=30)
            return report if report.row_count >= 3 * len(dream) else None

        report = wait_until(drift, 60, "the penguins' rows to reach monitoring")
    features = {f.feature: f for f in report.features}
    assert set(features) == set(shape.features.columns)
    island = features["island"]
    assert island.kind == monitoring_pb.FEATURE_KIND_CATEGORICAL and island.drifted
    assert any(t.name == "chi2" and t.drifted for t in island.tests)
    assert features["bill_length_mm"].kind == monitoring_pb.FEATURE_KIND_NUMERIC


def test_a_job_of_mixed_columns_from_csv(shapes: dict[str, Shape], channel: grpc.Channel) -> None:
    shape = shapes["penguins"]
    frame = shape.features.iloc[::3]
    text = io.StringIO()
    frame.to_csv(text, index=False, quoting=csv.QUOTE_MINIMAL)  # missing values as empty cells
    jobs = jobs_grpc.JobServiceStub(channel)
    job = jobs.SubmitJob(jobs_pb.SubmitJobRequest(model="penguins", payload=text.getvalue().encode(),
                                                  payload_format=jobs_pb.PAYLOAD_FORMAT_CSV), timeout=60).job
    done = wait_until(lambda: (j := jobs.GetJob(jobs_pb.GetJobRequest(job_id=job.job_id), timeout=30)).job.state in (
        jobs_pb.JOB_STATE_SUCCEEDED, jobs_pb.JOB_STATE_FAILED) and j, 120, "the job")
    assert done.job.state == jobs_pb.JOB_STATE_SUCCEEDED, done.job.error
    labels, token = [], ""
    while True:
        page = jobs.GetJob(jobs_pb.GetJobRequest(job_id=job.job_id, results_page_token=token), timeout=30)
        labels += [p.classification.label for p in page.predictions]
        token = page.next_results_page_token
        if not token:
            break
    assert labels == local_answers(shape, frame)


def test_bad_rows_are_refused_naming_the_field(stub: pb_grpc.InferenceServiceStub, served: Served) -> None:
    rows = [
        {"bill_length_mm": "long", "bill_depth_mm": 18.0, "flipper_length_mm": 181.0, "body_mass_g": 3750.0,
         "island": "Dream", "sex": "male"},
        {"bill_length_mm": 39.1, "bill_depth_mm": 18.0, "flipper_length_mm": 181.0, "body_mass_g": 3750.0,
         "island": None, "sex": "male"},
        {"bill_length_mm": 39.1, "bill_depth_mm": 18.0, "flipper_length_mm": 181.0, "island": "Dream", "sex": None},
    ]
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(predict_request("penguins", rows), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.value.details()
    assert "rows[0].bill_length_mm" in details
    response = httpx.post(f"{served.gateway.url}/v1/models/penguins:predict", json={"rows": rows}, timeout=30)
    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["details"]}
    assert {"rows[0].bill_length_mm", "rows[1].island", "rows[2].body_mass_g"} <= fields


def test_a_broken_version_fails_alone_in_every_service(served: Served, stub: pb_grpc.InferenceServiceStub,
                                                       channel: grpc.Channel) -> None:
    model = stub.GetModel(pb.GetModelRequest(model=BROKEN), timeout=30)
    (version,) = model.versions
    assert version.state == 3 and "reference sample" in version.reason  # MODEL_VERSION_STATE_FAILED
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(predict_request(BROKEN, [{}]), timeout=30)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE and "reference sample" in error.value.details()
    with grpc.insecure_channel(served.explain.address) as explain_channel:
        request = explain_pb.ExplainRequest(model=BROKEN, rows=[struct_pb2.Struct()])
        with pytest.raises(grpc.RpcError) as error:
            explain_grpc.ExplainServiceStub(explain_channel).Explain(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE and "reference sample" in error.value.details()
    assert "reference sample" in served.worker.log_text() or served.worker.process.poll() is None
    assert served.worker.process.poll() is None  # the worker goes on with every other model
    assert served.inference.process is not None and served.inference.process.poll() is None
    assert served.explain.process is not None and served.explain.process.poll() is None


def test_a_new_version_is_served_without_a_restart(shapes: dict[str, Shape], served: Served,
                                                   stub: pb_grpc.InferenceServiceStub) -> None:
    shape = shapes["wine-svc"]
    result = add(shape, served.repository)
    assert result.returncode == 0, result.stderr
    assert "wine-svc version 2" in result.stdout

    def ready() -> bool:
        versions = stub.GetModel(pb.GetModelRequest(model="wine-svc"), timeout=30).versions
        return any(v.version == "2" and v.state == 2 for v in versions)

    wait_until(ready, 60, "version 2 of wine-svc to load")
    frame = shape.requests(5)
    request = predict_request("wine-svc", json_rows(frame))
    request.version = "2"
    response = stub.Predict(request, timeout=30)
    assert [answer(p) for p in response.predictions] == local_answers(shape, frame)
    assert response.version == "2"


def test_typed_columns_in_the_card(stub: pb_grpc.InferenceServiceStub) -> None:
    card = stub.GetModel(pb.GetModelRequest(model="penguins-typed"), timeout=30).card
    types = {f.name: f.type for f in card.inputs}
    assert types == {"bill_length_mm": 1, "flipper_length_mm": 1, "year": 3, "male": 4}  # DOUBLE, INTEGER, BOOLEAN
    penguins = stub.GetModel(pb.GetModelRequest(model="penguins"), timeout=30).card
    island = next(f for f in penguins.inputs if f.name == "island")
    assert island.type == 5 and list(island.categories) == ["Biscoe", "Dream", "Torgersen"]  # CATEGORICAL
    assert next(f for f in penguins.inputs if f.name == "sex").nullable
    assert set(NUMERIC) <= {f.name for f in penguins.inputs}
