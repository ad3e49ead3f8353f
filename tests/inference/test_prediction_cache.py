"""The prediction cache in Redis: a hit on the same input, never another version's result, no Redis no problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import grpc
import pytest
import skops.io as sio
from palmerpenguins import load_penguins
from protoserve.inference.v1 import inference_service_pb2_grpc
from protoserve.jobs.v1 import job_service_pb2 as jobs_pb
from protoserve.jobs.v1 import job_service_pb2_grpc as jobs_grpc

from protoserve_models.adding import add_model
from protoserve_models.card import CARD_FILE, MODEL_FILE
from protoserve_runtime.redis_server import free_port
from tests.inference.rows import predict_request
from tests.jobs.harness import redis_env, start_service
from tests.models.test_add_model import penguin_pipeline

ROWS = [{"sepal_length": 6.0, "sepal_width": 2.9, "petal_length": 4.5, "petal_width": 1.5},
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]
SAME_ROWS_OTHER_SPELLING = [{"petal_width": 1.5, "petal_length": 4.5, "sepal_width": 2.9, "sepal_length": 6},
                            {"petal_width": 0.2, "petal_length": 1.4, "sepal_width": 3.5, "sepal_length": 5.1}]


def predict(address: str, rows: list[dict], version: str = "", skip_cache: bool = False,
            model: str = "iris-knn") -> tuple[object, str]:
    with grpc.insecure_channel(address) as channel:
        stub = inference_service_pb2_grpc.InferenceServiceStub(channel)
        request = predict_request(model, rows, version)
        request.skip_cache = skip_cache
        response, call = stub.Predict.with_call(request, timeout=10)
    # Every answer, cached or not, carries fresh prediction ids; the rest is what the cache holds.
    ids = [p.prediction_id for p in response.predictions]
    assert all(ids) and len(set(ids)) == len(ids)
    for prediction in response.predictions:
        prediction.ClearField("prediction_id")
    return response, dict(call.initial_metadata()).get("protoserve-cache", "")


def add_version_with_one_neighbour(repository: Path) -> None:
    """iris-knn version 2: the same data with k=1, whose probabilities differ from version 1's."""
    source, target = repository / "iris-knn" / "1", repository / "iris-knn" / "2"
    target.mkdir()
    estimator = sio.load(source / MODEL_FILE, trusted=sio.get_untrusted_types(file=source / MODEL_FILE))
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    final.set_params(n_neighbors=1)
    sio.dump(estimator, target / MODEL_FILE)
    card = json.loads((source / CARD_FILE).read_text())
    card["version"] = "2"
    (target / CARD_FILE).write_text(json.dumps(card))


def test_second_identical_predict_is_a_hit_and_a_new_version_never_sees_it(
    model_repository: Path, redis_url: str, tmp_path: Path
) -> None:
    repository = tmp_path / "models"
    shutil.copytree(model_repository / "iris-knn", repository / "iris-knn")
    env = redis_env(redis_url)
    service = start_service(repository, tmp_path, env)
    try:
        first, cache = predict(service.address, ROWS)
        assert cache == "miss"
        second, cache = predict(service.address, SAME_ROWS_OTHER_SPELLING)
        assert cache == "hit" and second == first
        third, cache = predict(service.address, ROWS, skip_cache=True)
        assert cache == "miss" and third == first
    finally:
        service.terminate()

    add_version_with_one_neighbour(repository)
    service = start_service(repository, tmp_path, env)  # same Redis, same prefix: the v1 entry is still there
    try:
        newer, cache = predict(service.address, ROWS)
        assert newer.version == "2" and cache == "miss"
        assert newer != first
        assert {p.probability for p in newer.predictions[0].classification.probabilities} <= {0.0, 1.0}
        older, cache = predict(service.address, ROWS, version="1")
        assert cache == "hit" and older == first
    finally:
        service.terminate()


def test_predict_answers_uncached_when_redis_is_down(model_repository: Path, tmp_path: Path) -> None:
    env = redis_env(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    service = start_service(model_repository, tmp_path, env)
    try:
        for _ in range(2):
            response, cache = predict(service.address, ROWS)
            assert cache == "miss" and [p.classification.label for p in response.predictions] == ["versicolor", "setosa"]
        with grpc.insecure_channel(service.address) as channel:
            with pytest.raises(grpc.RpcError) as error:
                jobs_grpc.JobServiceStub(channel).GetJob(jobs_pb.GetJobRequest(job_id="abc"), timeout=30)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        service.terminate()
    assert "prediction cache unavailable; predicting uncached" in service.log_text()


def test_a_dataframe_models_rows_are_cached_by_their_checked_values(redis_url: str, tmp_path: Path) -> None:
    """A pipeline fitted on a DataFrame (strings, numbers, a missing value): the same rows spelt
    otherwise hit; other rows miss."""
    penguins = load_penguins()
    add_model("penguins", penguin_pipeline(penguins), penguins, "species", tmp_path / "models")
    rows = [{"bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181, "body_mass_g": 3750,
             "island": "Torgersen", "sex": None}]
    respelt = [{"sex": None, "island": "Torgersen", "body_mass_g": 3750.0, "flipper_length_mm": 181.0,
                "bill_depth_mm": 18.7, "bill_length_mm": 39.1}]
    service = start_service(tmp_path / "models", tmp_path, redis_env(redis_url))
    try:
        first, cache = predict(service.address, rows, model="penguins")
        assert cache == "miss" and first.predictions[0].classification.label == "Adelie"
        second, cache = predict(service.address, respelt, model="penguins")
        assert cache == "hit" and second == first
        _, cache = predict(service.address, [{**rows[0], "island": "Dream"}], model="penguins")
        assert cache == "miss"
    finally:
        service.terminate()
