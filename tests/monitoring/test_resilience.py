"""Monitoring never hurts predictions, and a restarted replica picks up where it stopped."""

from __future__ import annotations

from pathlib import Path

import redis
from protoserve.monitoring.v1 import monitoring_service_pb2 as pb

from protoserve_runtime.redis_server import EmbeddedRedis, free_port
from tests.monitoring.system import (
    clients,
    metrics_url,
    reference_rows,
    sample_value,
    scrape,
    start_monitoring,
    start_publishing_inference,
    wait_until,
)

DROPPED = ("protoserve_prediction_events_dropped", "protoserve_prediction_events_dropped_total")


def test_predict_answers_and_counts_dropped_events_when_redis_is_down(model_repository: Path, tmp_path: Path) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    inference = start_publishing_inference(model_repository, tmp_path, nowhere)
    try:
        for stubs in clients(inference.address, "127.0.0.1:1"):
            predictions = stubs.predict("iris-knn", reference_rows(model_repository, "iris-knn", 50, seed=7), chunk=10)
            assert len(predictions) == 50 and all(p.prediction_id for p in predictions)
        url = metrics_url(inference, "PROTOSERVE_INFERENCE_METRICS_ADDRESS")
        dropped = wait_until(lambda: sample_value(scrape(url), *DROPPED), what="dropped events to be counted")
        assert 0 < dropped <= 50
        published = ("protoserve_prediction_events_published", "protoserve_prediction_events_published_total")
        assert sample_value(scrape(url), *published) == 0
    finally:
        inference.terminate()


def _caught_up(client: redis.Redis, stream: str) -> bool:
    """The group has been handed every event in the stream and acknowledged them all."""
    last = client.xrevrange(stream, count=1)
    groups = client.xinfo_groups(stream)
    return bool(last and groups and groups[0]["last-delivered-id"] == last[0][0] and groups[0]["pending"] == 0)


def test_restarted_monitoring_resumes_without_double_counting(model_repository: Path, redis_url: str, tmp_path: Path) -> None:
    stream = f"test:resume:{tmp_path.name}"
    names = {"PROTOSERVE_EVENTS_STREAM": stream, "PROTOSERVE_MONITORING_KEY_PREFIX": stream,
             "PROTOSERVE_MONITORING_CONSUMER": "replica-a"}
    client = redis.Redis.from_url(redis_url)
    inference = start_publishing_inference(model_repository, tmp_path, redis_url, **names)
    monitoring = start_monitoring(model_repository, tmp_path, redis_url, **names)
    try:
        rows = reference_rows(model_repository, "regression-gp", 300, seed=8)
        for stubs in clients(inference.address, monitoring.address):
            stubs.predict("regression-gp", rows[:100], chunk=25)
            stubs.wait_rows("regression-gp", 100)

        monitoring.terminate()  # SIGTERM: stops after the batch it is applying
        for stubs in clients(inference.address, "127.0.0.1:1"):
            assert len(stubs.predict("regression-gp", rows[100:200], chunk=25)) == 100  # monitoring down: Predict answers
        published = ("protoserve_prediction_events_published", "protoserve_prediction_events_published_total")
        url = metrics_url(inference, "PROTOSERVE_INFERENCE_METRICS_ADDRESS")
        wait_until(lambda: sample_value(scrape(url), *published) == 200, what="events published while monitoring was down")
        monitoring.start()
        for stubs in clients(inference.address, monitoring.address):
            stubs.wait_rows("regression-gp", 200)
            wait_until(lambda: _caught_up(client, stream), what="the group to catch up")
            assert stubs.window("regression-gp").row_count == 200

        monitoring.kill()  # SIGKILL: whatever it had read and not applied stays pending
        for stubs in clients(inference.address, "127.0.0.1:1"):
            stubs.predict("regression-gp", rows[200:], chunk=25)
        monitoring.start()
        for stubs in clients(inference.address, monitoring.address):
            stubs.wait_rows("regression-gp", 300)
            wait_until(lambda: _caught_up(client, stream), what="the group to catch up")
            window = stubs.window("regression-gp")
            assert (window.row_count, window.request_count) == (300, 12)
    finally:
        monitoring.terminate()
        inference.terminate()
        client.close()


def test_feedback_and_metrics_answer_right_after_redis_restarts(model_repository: Path, tmp_path: Path) -> None:
    """The pooled connections die with Redis; the next call reconnects instead of failing."""
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    inference = start_publishing_inference(model_repository, tmp_path, url)
    monitoring = start_monitoring(model_repository, tmp_path, url)
    try:
        for stubs in clients(inference.address, monitoring.address):
            predictions = stubs.predict("iris-knn", reference_rows(model_repository, "iris-knn", 4, seed=3))
            stubs.wait_rows("iris-knn", 4)

            server.stop()
            server.start()  # same port and data directory; the AOF brings the logged predictions back

            labels = [p.classification.label for p in predictions]
            answer = stubs.monitoring.RecordFeedback(
                pb.RecordFeedbackRequest(prediction_id=predictions[0].prediction_id, label=labels[0]), timeout=30
            )
            assert answer.correct
            assert stubs.window("iris-knn").row_count == 4
    finally:
        monitoring.terminate()
        inference.terminate()
        server.stop()
