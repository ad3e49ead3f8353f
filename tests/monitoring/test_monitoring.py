"""The monitoring service end to end: real inference publishing to a real Redis, real monitoring."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from protoserve.monitoring.v1 import monitoring_service_pb2 as pb

from tests.harness import REPO_ROOT, ServiceProcess
from tests.monitoring.system import (
    Clients,
    clients,
    metrics_url,
    reference_rows,
    sample_value,
    scrape,
    start_monitoring,
    start_publishing_inference,
    wait_until,
)


@pytest.fixture(scope="module")
def system(model_repository: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[ServiceProcess, ServiceProcess]
]:
    log_dir = tmp_path_factory.mktemp("monitored")
    names = {"PROTOSERVE_EVENTS_STREAM": "test:monitoring:events", "PROTOSERVE_MONITORING_KEY_PREFIX": "test:monitoring"}
    inference = start_publishing_inference(model_repository, log_dir, redis_url, **names)
    try:
        monitoring = start_monitoring(model_repository, log_dir, redis_url, **names)
    except Exception:
        inference.terminate()
        raise
    yield inference, monitoring
    monitoring.terminate()
    inference.terminate()


@pytest.fixture(scope="module")
def stubs(system: tuple[ServiceProcess, ServiceProcess]) -> Iterator[Clients]:
    inference, monitoring = system
    yield from clients(inference.address, monitoring.address)


GRPCURL = str(Path(sys.executable).with_name("grpcurl"))


def field_violations(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    fields = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            fields += [v.field for v in bad_request.field_violations]
    return fields


def test_drift_alert_fires_on_the_shifted_feature_only(stubs: Clients, model_repository: Path) -> None:
    alerts: queue.Queue[pb.Alert] = queue.Queue()
    watch = stubs.monitoring.WatchAlerts(pb.WatchAlertsRequest(model="iris-knn"))

    def follow() -> None:
        try:
            for response in watch:
                alerts.put(response.alert)
        except grpc.RpcError:
            pass  # cancelled at the end of the test

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        stubs.predict("iris-knn", reference_rows(model_repository, "iris-knn", 2000, seed=1))
        stubs.wait_rows("iris-knn", 2000)
        quiet = stubs.wait_evaluation()
        assert [a.id for a in quiet.firing] == [] and [a.id for a in quiet.history] == []
        drift = stubs.monitoring.GetDrift(pb.GetDriftRequest(model="iris-knn"))
        assert drift.row_count == 2000 and drift.reference_count > 0
        assert [f.feature for f in drift.features if f.drifted] == []
        assert alerts.empty()

        shifted = reference_rows(model_repository, "iris-knn", 2000, seed=2)
        for row in shifted:
            row["sepal_width"] += 1.5
        stubs.predict("iris-knn", shifted)
        alert = alerts.get(timeout=90)
        assert alert.rule == pb.ALERT_RULE_FEATURE_DRIFT and alert.state == pb.ALERT_STATE_FIRING
        assert (alert.model, alert.version, alert.feature) == ("iris-knn", "1", "sepal_width")
        assert alert.value >= alert.threshold > 0

        stubs.wait_rows("iris-knn", 4000)
        settled = stubs.wait_evaluation()
        assert [a.feature for a in settled.firing] == ["sepal_width"]
        drift = stubs.monitoring.GetDrift(pb.GetDriftRequest(model="iris-knn", window="5m"))
        by_feature = {f.feature: f for f in drift.features}
        assert [name for name, f in by_feature.items() if f.drifted] == ["sepal_width"]
        tests = {t.name: t for t in by_feature["sepal_width"].tests}
        assert tests["ks"].p_value < 0.01 and tests["psi"].statistic > 0.2
        assert sum(b.live_share for b in by_feature["sepal_width"].bins) == pytest.approx(1.0)
        assert alerts.empty()  # no second alert: the other features did not drift
    finally:
        watch.cancel()
        follower.join(10)


def test_accuracy_from_feedback_with_one_label_in_five_wrong(stubs: Clients, model_repository: Path) -> None:
    predictions = stubs.predict("risk", reference_rows(model_repository, "risk", 500, seed=3))
    stubs.wait_rows("risk", 500)
    labels = ("benign", "malignant")
    for i, prediction in enumerate(predictions):
        predicted = prediction.classification.label
        truth = predicted if i % 5 else next(label for label in labels if label != predicted)
        answer = stubs.monitoring.RecordFeedback(pb.RecordFeedbackRequest(prediction_id=prediction.prediction_id, label=truth))
        assert (answer.model, answer.correct) == ("risk", truth == predicted)
    accuracy = stubs.window("risk", "1h").accuracy
    assert accuracy.labeled_count == 500
    assert accuracy.accuracy == pytest.approx(0.80, abs=0.01)
    assert 0 < accuracy.f1_macro < 1

    with pytest.raises(grpc.RpcError) as again:
        stubs.monitoring.RecordFeedback(pb.RecordFeedbackRequest(prediction_id=predictions[0].prediction_id, label="benign"))
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert stubs.window("risk", "1h").accuracy.labeled_count == 500


def test_regression_error_from_feedback_and_traffic(stubs: Clients, model_repository: Path) -> None:
    predictions = stubs.predict("regression-gp", reference_rows(model_repository, "regression-gp", 40, seed=4), chunk=10)
    stubs.wait_rows("regression-gp", 40)
    for prediction in predictions:
        stubs.monitoring.RecordFeedback(
            pb.RecordFeedbackRequest(prediction_id=prediction.prediction_id, value=prediction.regression.value - 2.0)
        )
    window = stubs.window("regression-gp")
    assert (window.request_count, window.row_count, window.accuracy.labeled_count) == (4, 40, 40)
    assert window.accuracy.mae == pytest.approx(2.0) and window.accuracy.rmse == pytest.approx(2.0)
    assert window.outputs.mean > 0 and window.outputs.standard_deviation > 0
    assert 0 < window.latency_p50_ms <= window.latency_p95_ms <= window.latency_p99_ms
    assert sum(p.request_count for p in window.timeline) == 4


def test_failed_requests_are_counted_by_code(stubs: Clients) -> None:
    with pytest.raises(grpc.RpcError):
        stubs.predict("sentiment", [{"text": 3}])
    window = wait_until(lambda: (w := stubs.window("sentiment")).errors_by_code and w, what="the failed request")
    assert dict(window.errors_by_code) == {"INVALID_ARGUMENT": 1} and window.error_count == 1


def test_bad_feedback_is_refused_with_the_right_status(stubs: Clients, model_repository: Path) -> None:
    [classified] = stubs.predict("iris-knn", reference_rows(model_repository, "iris-knn", 1, seed=5))
    [regressed] = stubs.predict("regression-gp", reference_rows(model_repository, "regression-gp", 1, seed=5))
    wait_until(lambda: stubs.window("regression-gp").row_count >= 41 or stubs.window("regression-gp").row_count == 1,
               what="the regression row")

    def refused(request: pb.RecordFeedbackRequest) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            stubs.monitoring.RecordFeedback(request)
        return caught.value

    unknown = refused(pb.RecordFeedbackRequest(prediction_id="no-such-prediction", label="setosa"))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    wait_until(lambda: refused(pb.RecordFeedbackRequest(prediction_id=classified.prediction_id, value=1.0)).code()
               == grpc.StatusCode.INVALID_ARGUMENT, what="the classification to be consumed")
    cases = [
        (pb.RecordFeedbackRequest(prediction_id=classified.prediction_id, value=1.0), "value"),
        (pb.RecordFeedbackRequest(prediction_id=classified.prediction_id, label="tulip"), "label"),
        (pb.RecordFeedbackRequest(prediction_id=regressed.prediction_id, label="setosa"), "label"),
        (pb.RecordFeedbackRequest(prediction_id=regressed.prediction_id, value=float("nan")), "value"),
        (pb.RecordFeedbackRequest(prediction_id="", label="setosa"), "prediction_id"),
        (pb.RecordFeedbackRequest(prediction_id=classified.prediction_id), "truth"),
    ]
    for request, field in cases:
        error = wait_until(lambda r=request: (e := refused(r)).code() != grpc.StatusCode.NOT_FOUND and e, what="consumption")
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert field_violations(error) == [field]

    with pytest.raises(grpc.RpcError) as window:
        stubs.monitoring.GetModelMetrics(pb.GetModelMetricsRequest(model="iris-knn", window="2w"))
    assert window.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as model:
        stubs.monitoring.GetDrift(pb.GetDriftRequest(model="no-such-model"))
    assert model.value.code() == grpc.StatusCode.NOT_FOUND
    # Names that no model has (they would reach the model cards' paths) name their field.
    for request, field in [(pb.GetDriftRequest(model="iris-knn", version="\x005\x1f#6nE"), "version"),
                           (pb.GetDriftRequest(model="../iris-knn"), "model")]:
        with pytest.raises(grpc.RpcError) as bad:
            stubs.monitoring.GetDrift(request)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(bad.value) == [field]
    with pytest.raises(grpc.RpcError) as bad_metrics:
        stubs.monitoring.GetModelMetrics(pb.GetModelMetricsRequest(model="iris-knn", version="1/../1"))
    assert bad_metrics.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_readme_monitoring_examples_work(stubs: Clients, system: tuple[ServiceProcess, ServiceProcess],
                                         model_repository: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    commands = [c.replace("\\\n", " ") for c in re.findall(r"^grpcurl .*?(?<!\\)$", readme, flags=re.M | re.S)]
    unary = [c for c in commands if "127.0.0.1:50054" in c and "WatchAlerts" not in c]
    assert len(unary) == 2
    [prediction] = stubs.predict("iris-knn", reference_rows(model_repository, "iris-knn", 1, seed=9))
    stubs.wait_rows("iris-knn", 1)
    for command in unary:
        command = command.replace("127.0.0.1:50054", system[1].address).replace("<id from Predict>", prediction.prediction_id)
        result = wait_until(lambda c=command: (r := subprocess.run(c.replace("grpcurl", GRPCURL, 1), shell=True,
                                                                   capture_output=True, text=True, timeout=60)).returncode == 0
                            and r, what=command)
        assert json.loads(result.stdout)


def test_metrics_endpoints_are_scraped_and_parsed(stubs: Clients, system: tuple[ServiceProcess, ServiceProcess],
                                                  model_repository: Path) -> None:
    inference, monitoring = system
    stubs.predict("iris-knn", reference_rows(model_repository, "iris-knn", 10, seed=6))
    stubs.monitoring.ListAlerts(pb.ListAlertsRequest())
    served = scrape(metrics_url(inference, "PROTOSERVE_INFERENCE_METRICS_ADDRESS"))
    assert sample_value(served, "protoserve_grpc_server_handled", "protoserve_grpc_server_handled_total",
                        grpc_method="Predict", grpc_code="OK") >= 1
    assert sample_value(served, "protoserve_grpc_server_handling_seconds", "protoserve_grpc_server_handling_seconds_count",
                        grpc_method="Predict") >= 1
    published = wait_until(lambda: sample_value(scrape(metrics_url(inference, "PROTOSERVE_INFERENCE_METRICS_ADDRESS")),
                                                "protoserve_prediction_events_published",
                                                "protoserve_prediction_events_published_total"), what="published events")
    assert published >= 10
    watched = scrape(metrics_url(monitoring, "PROTOSERVE_MONITORING_METRICS_ADDRESS"))
    assert sample_value(watched, "protoserve_monitoring_events_consumed", "protoserve_monitoring_events_consumed_total") > 0
    assert sample_value(watched, "protoserve_grpc_server_handled", "protoserve_grpc_server_handled_total",
                        grpc_method="ListAlerts", grpc_code="OK") >= 1
    assert "protoserve_monitoring_drift_statistic" in watched
