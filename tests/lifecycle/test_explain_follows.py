"""The explain service follows the model lifecycle as the inference workers do: a version added to
the repository becomes explainable without a restart, and a call naming no version explains the
default version, the one that answers predictions."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
from protoserve.explain.v1 import explain_service_pb2_grpc
from protoserve.models.v1 import model_service_pb2 as pb

from tests.conftest import start_inference
from tests.explain.calls import explain_request
from tests.explain.conftest import start_explain
from tests.lifecycle.system import IRIS_ROW, add_version, answered_by, stubs
from tests.monitoring.system import wait_until


def explained_version(address: str, version: str = "") -> str:
    with grpc.insecure_channel(address) as channel:
        request = explain_request("iris-knn", [IRIS_ROW])
        request.version = version
        try:
            return str(explain_service_pb2_grpc.ExplainServiceStub(channel).Explain(request, timeout=30).version)
        except grpc.RpcError as exc:
            return exc.code().name  # type: ignore[attr-defined, no-any-return]


def test_explain_serves_new_versions_and_the_promoted_default(model_repository: Path, redis_url: str, tmp_path: Path) -> None:
    repository = tmp_path / "models"
    (repository / "iris-knn").mkdir(parents=True)
    add_version(model_repository, repository, "iris-knn", "1")
    shared = {"PROTOSERVE_REDIS_URL": redis_url, "PROTOSERVE_REDIS_PREFIX": f"explain-lc-{uuid.uuid4().hex[:8]}",
              "PROTOSERVE_REPOSITORY_POLL_SECONDS": "0.5"}
    inference = start_inference(repository, tmp_path, PROTOSERVE_INFERENCE_WORKERS="1", **shared)
    # One worker: several each follow the repository on their own, so a new connection can reach
    # one that has not yet seen version 2 (as for inference workers).
    explain = start_explain(repository, tmp_path, PROTOSERVE_EXPLAIN_WORKERS="1", **shared)
    try:
        assert explained_version(explain.address) == "1"
        add_version(model_repository, repository, "iris-knn", "2")
        wait_until(lambda: explained_version(explain.address, "2") == "2", what="explain to load version 2")
        assert explained_version(explain.address) == "2"  # the newest, as long as no default is set

        with stubs(inference.address) as (models, predictions):
            wait_until(lambda: answered_by(predictions, "iris-knn") == "2", what="inference to load version 2")
            models.PromoteVersion(pb.PromoteVersionRequest(model="iris-knn", version="1"), timeout=60)
            assert answered_by(predictions, "iris-knn") == "1"
        wait_until(lambda: explained_version(explain.address) == "1", what="explain to follow the promotion")
        assert explained_version(explain.address, "2") == "2"  # a pinned version is still explained
    finally:
        explain.terminate()
        inference.terminate()
