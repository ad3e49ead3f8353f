"""Training runs on iris-knn (fast): a CSV upload, both promotion outcomes, the experiment record,
and every bad input's clear error with the serving version untouched. Real service, worker, Redis."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from protoserve.models.v1 import model_service_pb2 as pb
from sklearn.datasets import load_iris

from protoserve_models.card import ModelCard
from tests.inference.rows import predict_request
from tests.monitoring.system import wait_until
from tests.training.system import TrainingSystem, system_fixture, train_request, wait_run

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_ROW = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}


@pytest.fixture(scope="module")
def system(model_repository: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainingSystem]:
    yield from system_fixture(model_repository, tmp_path_factory.mktemp("training"), redis_url,
                              PROTOSERVE_TRAINING_MAX_CSV_BYTES="20000")


def iris_csv(label_of: dict[str, str] | None = None, label_column: str = "label", drop: str = "") -> bytes:
    """The iris rows as an upload; label_of renames classes (to make a model the champion cannot match)."""
    data = load_iris()
    names = [str(n) for n in data.target_names]
    out = io.StringIO()
    columns = [c for c in FEATURES if c != drop] + [label_column]
    writer = csv.writer(out)
    writer.writerow(columns)
    for row, target in zip(data.data.tolist(), data.target.tolist()):
        label = names[target]
        values = dict(zip(FEATURES, row)) | {label_column: (label_of or {}).get(label, label)}
        writer.writerow([values[c] for c in columns])
    return out.getvalue().encode()


def train(system: TrainingSystem, request: pb.TrainModelRequest) -> pb.TrainingRun:
    run_id = system.models.TrainModel(request, timeout=60).run_id
    return wait_run(system.models, run_id)


def versions(system: TrainingSystem) -> tuple[str, list[str]]:
    listing = system.models.ListVersions(pb.ListVersionsRequest(model="iris-knn"), timeout=10)
    return listing.default_version, sorted(v.version for v in listing.versions)


def serving_version(system: TrainingSystem) -> str:
    return str(system.predict.Predict(predict_request("iris-knn", [IRIS_ROW]), timeout=10).version)


def test_a_csv_run_that_loses_is_recorded_and_not_promoted(system: TrainingSystem) -> None:
    # A one-level tree on the iris rows cannot reach the k-NN champion's accuracy plus the margin.
    run = train(system, train_request(
        "iris-knn", "sklearn.tree.DecisionTreeClassifier", {"max_depth": 1}, csv=iris_csv(),
    ))
    assert run.state == pb.TRAINING_RUN_STATE_SUCCEEDED, run.error
    assert run.version == "2" and run.progress == 1.0
    assert run.parameters["max_depth"] == 1 and run.parameters["random_state"] == 0
    assert run.data.rows_by_source == {"csv": 150}
    assert run.data.train_rows + run.data.test_rows == 150 and len(run.data.sha256) == 64
    decision = run.promotion
    assert decision.metric == "accuracy" and decision.champion_version == "1"
    assert decision.challenger_score == pytest.approx(run.metrics["accuracy"], abs=1e-4)
    assert decision.challenger_score < decision.champion_score + decision.margin
    assert not decision.promoted and "not promoted" in decision.reason
    assert run.duration_seconds > 0 and run.finish_time.seconds >= run.create_time.seconds
    # The experiment record is on the new version's card, and ListVersions shows it.
    card = ModelCard.read(system.repository / "iris-knn" / "2")
    assert card.training["run"]["run_id"] == run.run_id and card.metrics == dict(run.metrics)
    assert card.training["run"]["promotion"]["promoted"] is False
    listing = system.models.ListVersions(pb.ListVersionsRequest(model="iris-knn"), timeout=10)
    new = next(v for v in listing.versions if v.version == "2")
    assert new.training_run.run_id == run.run_id and not new.is_default
    assert serving_version(system) == "1"


def test_a_run_that_wins_is_promoted_and_serves(system: TrainingSystem) -> None:
    # Renamed classes: the champion is wrong on every held-out row, the challenger learns the names.
    renamed = {"setosa": "virginica", "virginica": "setosa"}
    run = train(system, train_request("iris-knn", csv=iris_csv(renamed), parameters={"n_neighbors": 3}))
    assert run.state == pb.TRAINING_RUN_STATE_SUCCEEDED, run.error
    assert run.recipe == "iris-knn" and run.parameters["n_neighbors"] == 3 and run.parameters["metric"] == "euclidean"
    decision = run.promotion
    assert decision.promoted and decision.challenger_score >= decision.champion_score + decision.margin
    assert decision.mode == pb.PROMOTION_MODE_AUTO and decision.champion_version == "1"
    # Each replica follows the serving state (polling it), so it sees the new default shortly.
    wait_until(lambda: versions(system)[0] == run.version, what="the new default on the replica")
    response = wait_until(lambda: (r := system.predict.Predict(predict_request("iris-knn", [IRIS_ROW]), timeout=10))
                          .version == run.version and r, what="the promoted version to answer")
    assert response.predictions[0].classification.label == "setosa"  # a virginica flower, by the renamed classes


def test_manual_never_promotes_and_builtin_data_remakes_the_built_model(system: TrainingSystem) -> None:
    default_before, _ = versions(system)
    run = train(system, train_request("iris-knn", builtin=True, promotion=pb.PROMOTION_MODE_MANUAL))
    assert run.state == pb.TRAINING_RUN_STATE_SUCCEEDED, run.error
    assert not run.promotion.promoted and run.promotion.reason.startswith("MANUAL")
    assert run.data.rows_by_source == {"builtin": 150}
    built = ModelCard.read(system.repository / "iris-knn" / "1")
    card = ModelCard.read(system.repository / "iris-knn" / run.version)
    assert card.metrics == built.metrics and card.reference_sample == built.reference_sample
    assert card.algorithm == built.algorithm
    assert versions(system)[0] == default_before


def test_an_idempotency_key_returns_the_first_run(system: TrainingSystem) -> None:
    request = train_request("iris-knn", builtin=True, promotion=pb.PROMOTION_MODE_MANUAL, idempotency_key="iris-once")
    first = system.models.TrainModel(request, timeout=60).run_id
    assert system.models.TrainModel(request, timeout=60).run_id == first
    wait_run(system.models, first)


def test_a_failure_found_while_training_fails_the_run_and_writes_nothing(system: TrainingSystem) -> None:
    default_before, before = versions(system)
    one_class = b"sepal_length,sepal_width,petal_length,petal_width,label\n" + b"".join(
        f"{5 + i / 10},3.0,1.4,0.2,setosa\n".encode() for i in range(20)
    )
    run = train(system, train_request("iris-knn", csv=one_class))
    assert run.state == pb.TRAINING_RUN_STATE_FAILED
    assert "single class ('setosa')" in run.error
    assert not run.version
    assert versions(system) == (default_before, before)
    assert not [p for p in (system.repository / "iris-knn").iterdir() if p.name.startswith(".")]


BAD = [
    (dict(model="no-such-model", builtin=True), grpc.StatusCode.NOT_FOUND, "no-such-model"),
    (dict(recipe="sklearn.svm.SVC", builtin=True), grpc.StatusCode.INVALID_ARGUMENT, "recipe: 'sklearn.svm.SVC' is neither"),
    (dict(recipe="sklearn.linear_model.Ridge", builtin=True), grpc.StatusCode.INVALID_ARGUMENT, "regression estimator"),
    (dict(parameters={"n_neigbors": 3}, builtin=True), grpc.StatusCode.INVALID_ARGUMENT, "parameters.n_neigbors"),
    (dict(parameters={"metric": "cosine"}, builtin=True), grpc.StatusCode.INVALID_ARGUMENT, "euclidean or manhattan"),
    (dict(recipe="sklearn.ensemble.RandomForestClassifier", parameters={"n_estimators": -3}, builtin=True),
     grpc.StatusCode.INVALID_ARGUMENT, "n_estimators"),
    (dict(), grpc.StatusCode.INVALID_ARGUMENT, "data: choose at least one source"),
    (dict(csv=iris_csv(label_column="species")), grpc.StatusCode.INVALID_ARGUMENT, "no label column 'label'"),
    (dict(csv=iris_csv(drop="petal_width")), grpc.StatusCode.INVALID_ARGUMENT, "missing feature column(s) petal_width"),
    (dict(csv=iris_csv({"setosa": "lily"})), grpc.StatusCode.INVALID_ARGUMENT, "'lily' is not a class the model knows"),
    (dict(csv=iris_csv().splitlines()[0] + b"\n"), grpc.StatusCode.INVALID_ARGUMENT, "holds no rows"),
    (dict(feedback=True), grpc.StatusCode.INVALID_ARGUMENT, "no labeled feedback for model iris-knn"),
    (dict(csv=iris_csv() * 10), grpc.StatusCode.RESOURCE_EXHAUSTED, "limit of 20000 bytes"),
]


@pytest.mark.parametrize(("fields", "code", "words"), BAD, ids=[w for _, _, w in BAD])
def test_bad_input_is_refused_at_the_call_and_serving_is_untouched(
    system: TrainingSystem, fields: dict[str, object], code: grpc.StatusCode, words: str
) -> None:
    before = versions(system), serving_version(system)
    request = train_request(str(fields.pop("model", "iris-knn")), **fields)  # type: ignore[arg-type]
    with pytest.raises(grpc.RpcError) as caught:
        system.models.TrainModel(request, timeout=60)
    assert caught.value.code() == code, caught.value.details()  # type: ignore[attr-defined]
    assert words in caught.value.details()  # type: ignore[attr-defined]
    assert (versions(system), serving_version(system)) == before


def test_an_unknown_run_is_not_found(system: TrainingSystem) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        system.models.GetTrainingRun(pb.GetTrainingRunRequest(run_id="0" * 32), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_the_run_record_is_json_on_the_card() -> None:
    # The card's run parses back into the TrainingRun message the RPCs answer with.
    from inference_svc.training.grpc_api import run_to_proto

    run = {"run_id": "r", "state": "TRAINING_RUN_STATE_SUCCEEDED", "create_time": "2026-01-01T00:00:00.000000Z",
           "promotion": {"mode": "PROMOTION_MODE_MANUAL", "promoted": False}, "data": {"rows_by_source": {"csv": 3}},
           "parameters": {"k": 1}, "metrics": {"accuracy": 0.5}}
    message = run_to_proto(json.loads(json.dumps(run)))
    assert message.promotion.mode == pb.PROMOTION_MODE_MANUAL and message.data.rows_by_source["csv"] == 3
    assert np.isclose(message.metrics["accuracy"], 0.5)
