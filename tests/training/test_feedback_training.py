"""Retrain sentiment on its built-in data plus 200 feedback labels recorded through monitoring, and
watch Predict switch to the promoted version while 20 clients call it, with no failed call.

Training sentiment on its full data takes a while, so this module trains it once on all of it (and
once on the feedback alone, which is quick). The worker's margin is -1 here so that the AUTO run is
sure to win and the switch can be watched; iris tests prove the policy refusing a loser."""

from __future__ import annotations

import functools
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from protoserve.models.v1 import model_service_pb2 as pb
from protoserve.monitoring.v1 import monitoring_service_pb2 as monitoring_pb
from protoserve.monitoring.v1 import monitoring_service_pb2_grpc

from protoserve_models.card import ModelCard
from tests.inference.rows import predict_request
from tests.monitoring.system import wait_until
from tests.training.system import TrainingSystem, system_fixture, train_request, wait_run

ITEMS = ["the new phone", "this hotel", "the concert", "our dinner", "the service", "this book", "the update",
         "the trip", "the movie", "the coffee"]
GOOD = ["wonderful", "excellent", "delightful", "fantastic", "superb", "lovely", "brilliant", "great", "charming", "terrific"]
BAD = ["awful", "terrible", "dreadful", "horrible", "disappointing", "miserable", "lousy", "pathetic", "dismal", "atrocious"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def labeled_texts() -> list[tuple[str, str]]:
    """200 texts the corpus never held, with their true sentiment."""
    positive = [(f"Honestly, {i} was {a}.", "positive") for i, a in itertools.product(ITEMS, GOOD)][:70]
    negative = [(f"Honestly, {i} was {a}.", "negative") for i, a in itertools.product(ITEMS, BAD)][:70]
    neutral = [(f"{i.capitalize()} is planned for {d}.", "neutral") for i, d in itertools.product(ITEMS, DAYS)][:60]
    return positive + negative + neutral


@pytest.fixture(scope="module")
def system(model_repository: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainingSystem]:
    yield from system_fixture(model_repository, tmp_path_factory.mktemp("feedback-training"), redis_url,
                              monitoring=True, PROTOSERVE_PROMOTION_MARGIN="-1")


@pytest.fixture(scope="module")
def feedback(system: TrainingSystem, redis_url: str) -> int:
    """200 predictions of sentiment, each given its true label through the monitoring service."""
    assert system.monitoring is not None
    monitoring = monitoring_service_pb2_grpc.MonitoringServiceStub(system.channel(system.monitoring.address))
    texts = labeled_texts()
    ids: list[str] = []
    for start in range(0, len(texts), 50):
        rows = [{"text": text} for text, _ in texts[start : start + 50]]
        response = system.predict.Predict(predict_request("sentiment", rows), timeout=60)
        ids.extend(p.prediction_id for p in response.predictions)

    def record(prediction_id: str, label: str) -> bool:
        try:
            monitoring.RecordFeedback(monitoring_pb.RecordFeedbackRequest(prediction_id=prediction_id, label=label), timeout=10)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                return False  # its event is not consumed yet
            raise
        return True

    for prediction_id, (_, label) in zip(ids, texts, strict=True):
        wait_until(functools.partial(record, prediction_id, label), what="the prediction to be logged")
    stream = f"{system.env['PROTOSERVE_LABELED_EXAMPLES_STREAM']}:sentiment"
    with redis.Redis.from_url(redis_url) as client:
        return int(client.xlen(stream))


def test_feedback_becomes_labeled_examples(feedback: int) -> None:
    assert feedback == 200


def test_a_manual_run_on_the_feedback_is_recorded_and_not_promoted(system: TrainingSystem, feedback: int) -> None:
    run_id = system.models.TrainModel(train_request("sentiment", feedback=True, promotion=pb.PROMOTION_MODE_MANUAL),
                                      timeout=60).run_id
    run = wait_run(system.models, run_id)
    assert run.state == pb.TRAINING_RUN_STATE_SUCCEEDED, run.error
    assert run.version == "2" and run.recipe == "sentiment"
    assert run.data.rows_by_source == {"feedback": 200} and run.data.test_rows == 50
    assert 0.0 <= run.metrics["accuracy"] <= 1.0 and "f1_macro" in run.metrics
    assert not run.promotion.promoted and run.promotion.champion_version == "1"
    assert ModelCard.read(system.repository / "sentiment" / "2").training["run"]["run_id"] == run_id
    listing = system.models.ListVersions(pb.ListVersionsRequest(model="sentiment"), timeout=10)
    assert listing.default_version == "1"


def test_an_auto_run_on_builtin_data_and_feedback_switches_predict_without_a_failed_call(
    system: TrainingSystem, feedback: int
) -> None:
    stop = threading.Event()
    seen: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    stub = system.predict
    request = predict_request("sentiment", [{"text": "The staff were friendly and the room was spotless."}])

    def client() -> None:
        while not stop.is_set():
            try:
                version = stub.Predict(request, timeout=30).version
            except grpc.RpcError as exc:
                with lock:
                    failures.append(f"{exc.code()}: {exc.details()}")  # type: ignore[attr-defined]
                continue
            with lock:
                seen[version] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(20)]
    for thread in threads:
        thread.start()
    try:
        run_id = system.models.TrainModel(train_request("sentiment", builtin=True, feedback=True), timeout=60).run_id
        progress = []
        run = system.models.GetTrainingRun(pb.GetTrainingRunRequest(run_id=run_id), timeout=10).run
        while run.state not in (pb.TRAINING_RUN_STATE_SUCCEEDED, pb.TRAINING_RUN_STATE_FAILED):
            progress.append(run.progress)
            stop.wait(0.5)
            run = system.models.GetTrainingRun(pb.GetTrainingRunRequest(run_id=run_id), timeout=10).run
        assert run.state == pb.TRAINING_RUN_STATE_SUCCEEDED, run.error
        assert progress == sorted(progress)
        decision = run.promotion
        assert decision.margin == -1.0 and decision.metric == "accuracy" and decision.champion_version == "1"
        assert decision.promoted == (decision.challenger_score >= decision.champion_score + decision.margin)
        assert decision.promoted and run.version == "3"
        assert run.data.rows_by_source["feedback"] == 200 and run.data.rows_by_source["builtin"] > 5000
        assert "accuracy_feedback" in run.metrics
        wait_until(lambda: seen["3"] > 0, timeout=120, what="Predict to answer with the promoted version")
        stop.wait(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert set(seen) == {"1", "3"}
    card = ModelCard.read(system.repository / "sentiment" / "3")
    assert card.training["run"]["promotion"]["promoted"] is True and card.metrics == dict(run.metrics)
