"""ModelService's serving side on a real system: two inference workers, monitoring, one Redis.

Traffic split, shadow, promotion and unload under load, hot reload of a new version directory,
and bad input that leaves the serving state as it was.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from protoserve.models.v1 import model_service_pb2 as pb
from protoserve.monitoring.v1 import monitoring_service_pb2 as monitoring_pb
from protoserve.monitoring.v1 import monitoring_service_pb2_grpc

from tests.conftest import start_inference
from tests.harness import ServiceProcess
from tests.inference.rows import predict_request
from tests.inference.test_bad_input import field_violations
from tests.lifecycle.system import IRIS_ROW, add_version, answered_by, on_every_worker, stubs, version_states
from tests.monitoring.system import FAST, start_monitoring, wait_until


@dataclass
class LifecycleSystem:
    repository: Path
    inference: ServiceProcess
    monitoring: ServiceProcess

    @property
    def address(self) -> str:
        return self.inference.address


@pytest.fixture(scope="module")
def system(model_repository: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifecycleSystem]:
    """iris-knn and iris-shadow, versions 1 and 2 each (copies of the built iris-knn)."""
    repository = tmp_path_factory.mktemp("lifecycle-models")
    for name in ("iris-knn", "iris-shadow"):
        (repository / name).mkdir()
        for version in ("1", "2"):
            add_version(model_repository, repository, name, version)
    prefix = f"lifecycle-{uuid.uuid4().hex[:8]}"
    shared = {
        "PROTOSERVE_REDIS_URL": redis_url,
        "PROTOSERVE_REDIS_PREFIX": prefix,
        "PROTOSERVE_EVENTS_STREAM": f"{prefix}:events",
        "PROTOSERVE_MONITORING_KEY_PREFIX": f"{prefix}:monitoring",
    }
    logs = tmp_path_factory.mktemp("lifecycle-logs")
    monitoring = start_monitoring(repository, logs, redis_url, **shared)
    inference = start_inference(repository, logs, PROTOSERVE_INFERENCE_WORKERS="2", **FAST, **shared)
    yield LifecycleSystem(repository, inference, monitoring)
    inference.terminate()
    monitoring.terminate()


def rpc_error(call, *args) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, timeout=30)
    return caught.value


def routes(*pairs: tuple[str, int]) -> list[pb.TrafficRoute]:
    return [pb.TrafficRoute(version=v, weight=w) for v, w in pairs]


def test_bad_input_is_refused_and_changes_nothing(system: LifecycleSystem) -> None:
    with stubs(system.address) as (models, _):
        models.SetTraffic(pb.SetTrafficRequest(model="iris-knn", routes=routes(("1", 50), ("2", 50))), timeout=30)
        before = models.ListVersions(pb.ListVersionsRequest(model="iris-knn"), timeout=30)
        invalid = [
            (models.SetTraffic, pb.SetTrafficRequest(model="iris-knn", routes=routes(("1", 0))), "routes[0].weight"),
            (models.SetTraffic, pb.SetTrafficRequest(model="iris-knn", routes=routes(("1", 5), ("1", 5))),
             "routes[1].version"),
            (models.SetTraffic, pb.SetTrafficRequest(model="iris-knn", routes=routes(("9", 5))), "routes[0].version"),
            (models.SetTraffic, pb.SetTrafficRequest(model="iris-knn", shadow_version="9"), "shadow_version"),
            (models.SetVersionPolicy, pb.SetVersionPolicyRequest(
                model="iris-knn", policy=pb.VersionPolicy(specific=pb.VersionPolicy.Specific())),
             "policy.specific.versions"),
            (models.SetVersionPolicy, pb.SetVersionPolicyRequest(
                model="iris-knn", policy=pb.VersionPolicy(latest=pb.VersionPolicy.Latest(count=0))),
             "policy.latest.count"),
            (models.LoadModel, pb.LoadModelRequest(model="iris-knn", version="one"), "version"),
            (models.ListVersions, pb.ListVersionsRequest(model="Bad Name"), "model"),
        ]
        for call, request, field in invalid:
            error = rpc_error(call, request)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, error.details())
            assert field in field_violations(error), (field, error.details())
        for call, request in [
            (models.ListVersions, pb.ListVersionsRequest(model="no-such-model")),
            (models.LoadModel, pb.LoadModelRequest(model="iris-knn", version="9")),
            (models.PromoteVersion, pb.PromoteVersionRequest(model="iris-knn", version="9")),
            (models.UnloadModel, pb.UnloadModelRequest(model="no-such-model", version="1")),
        ]:
            assert rpc_error(call, request).code() == grpc.StatusCode.NOT_FOUND, request
        for version, words in [("1", "SetTraffic"), ("2", "SetTraffic")]:  # both have traffic
            error = rpc_error(models.UnloadModel, pb.UnloadModelRequest(model="iris-knn", version=version))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and words in error.details()
        models.SetTraffic(pb.SetTrafficRequest(model="iris-knn"), timeout=30)
        models.PromoteVersion(pb.PromoteVersionRequest(model="iris-knn", version="2"), timeout=30)
        error = rpc_error(models.UnloadModel, pb.UnloadModelRequest(model="iris-knn", version="2"))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "PromoteVersion" in error.details()
        after = models.ListVersions(pb.ListVersionsRequest(model="iris-knn"), timeout=30)
        assert after.default_version == "2" and not after.routes
        # Every refused call left the state as the valid calls made it.
        models.SetTraffic(pb.SetTrafficRequest(model="iris-knn", routes=routes(("1", 50), ("2", 50))), timeout=30)
        again = models.ListVersions(pb.ListVersionsRequest(model="iris-knn"), timeout=30)
        assert list(again.routes) == list(before.routes) and again.policy == before.policy
        assert [(v.version, v.state) for v in again.versions] == [(v.version, v.state) for v in before.versions]
        models.SetTraffic(pb.SetTrafficRequest(model="iris-knn"), timeout=30)


def test_split_90_10_serves_each_version_by_weight(system: LifecycleSystem) -> None:
    with stubs(system.address) as (models, _):
        response = models.SetTraffic(
            pb.SetTrafficRequest(model="iris-knn", routes=routes(("1", 90), ("2", 10))), timeout=30
        )
        assert [(r.version, r.weight) for r in response.routes] == [("1", 90), ("2", 10)]
        listing = models.ListVersions(pb.ListVersionsRequest(model="iris-knn"), timeout=30)
        assert {v.version: round(v.traffic_share, 2) for v in listing.versions} == {"1": 0.9, "2": 0.1}

    def split_known(models, inference) -> bool:  # type: ignore[no-untyped-def]
        return len(models.ListVersions(pb.ListVersionsRequest(model="iris-knn"), timeout=30).routes) == 2

    wait_until(lambda: on_every_worker(system.address, split_known), what="the split on every worker")
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def send(n: int) -> None:
        seen: Counter[str] = Counter()
        with stubs(system.address) as (_, inference):
            for _ in range(n):
                seen[answered_by(inference, "iris-knn")] += 1
        with lock:
            counts.update(seen)

    threads = [threading.Thread(target=send, args=(1250,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(counts.values())
    print("90/10 split over", total, "requests:", dict(counts))
    assert total == 5000
    assert abs(counts["1"] / total - 0.90) <= 0.03, counts
    assert abs(counts["2"] / total - 0.10) <= 0.03, counts
    with stubs(system.address) as (models, _):
        models.SetTraffic(pb.SetTrafficRequest(model="iris-knn"), timeout=30)


def test_shadow_predicts_for_monitoring_never_for_the_caller(system: LifecycleSystem) -> None:
    with stubs(system.address) as (models, _):
        models.PromoteVersion(pb.PromoteVersionRequest(model="iris-shadow", version="2"), timeout=30)
        models.SetTraffic(pb.SetTrafficRequest(model="iris-shadow", shadow_version="1"), timeout=30)
        listing = models.ListVersions(pb.ListVersionsRequest(model="iris-shadow"), timeout=30)
        assert {v.version: v.shadow for v in listing.versions} == {"1": True, "2": False}

    def shadow_known(models, inference) -> bool:  # type: ignore[no-untyped-def]
        return models.ListVersions(pb.ListVersionsRequest(model="iris-shadow"), timeout=30).shadow_version == "1"

    wait_until(lambda: on_every_worker(system.address, shadow_known), what="the shadow on every worker")
    rows = [dict(IRIS_ROW, sepal_length=4.5 + i / 10) for i in range(10)]
    with stubs(system.address) as (_, inference):
        for _ in range(20):
            response = inference.Predict(predict_request("iris-shadow", rows), timeout=30)
            assert response.version == "2"
            assert len(response.predictions) == len(rows)  # the shadow's answers are not added
    with grpc.insecure_channel(system.monitoring.address) as channel:
        monitoring = monitoring_service_pb2_grpc.MonitoringServiceStub(channel)

        def rows_of(version: str) -> int:
            request = monitoring_pb.GetModelMetricsRequest(model="iris-shadow", version=version, window="5m")
            try:
                return int(monitoring.GetModelMetrics(request, timeout=30).windows[0].row_count)
            except grpc.RpcError:
                return 0

        wait_until(lambda: rows_of("2") >= 200 and rows_of("1") >= 200, what="both versions' rows in monitoring")
        print("monitoring rows: answering version 2:", rows_of("2"), "shadow version 1:", rows_of("1"))


def test_unload_and_promote_under_load_fail_nothing(system: LifecycleSystem) -> None:
    stop = threading.Event()
    failures: list[str] = []
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def client() -> None:
        with stubs(system.address) as (_, inference):
            while not stop.is_set():
                try:
                    version = answered_by(inference, "iris-knn")
                except grpc.RpcError as exc:
                    with lock:
                        failures.append(f"{exc.code()}: {exc.details()}")
                    continue
                with lock:
                    seen[version] += 1

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        with stubs(system.address) as (models, _):
            for _ in range(3):
                for keep, drop in (("1", "2"), ("2", "1")):
                    models.PromoteVersion(pb.PromoteVersionRequest(model="iris-knn", version=keep), timeout=60)
                    models.UnloadModel(pb.UnloadModelRequest(model="iris-knn", version=drop), timeout=60)
                    assert version_states(models, "iris-knn")[drop] == "VERSION_STATE_AVAILABLE"
                    loaded = models.LoadModel(pb.LoadModelRequest(model="iris-knn", version=drop), timeout=60)
                    assert loaded.version.state == pb.VERSION_STATE_READY
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    print("answers during promote/unload/load cycles:", dict(seen), "failed:", len(failures))
    assert not failures, failures[:5]
    assert seen["1"] > 0 and seen["2"] > 0


def test_new_version_directory_is_picked_up_and_policy_applies(system: LifecycleSystem, model_repository: Path) -> None:
    with stubs(system.address) as (models, _):  # a promoted default, whichever tests ran before
        models.PromoteVersion(pb.PromoteVersionRequest(model="iris-knn", version="1"), timeout=60)
    add_version(model_repository, system.repository, "iris-knn", "3")

    def serves_3_and_keeps_1(models, inference) -> bool:  # type: ignore[no-untyped-def]
        ready = version_states(models, "iris-knn").get("3") == "VERSION_STATE_READY"
        return ready and answered_by(inference, "iris-knn", "3") == "3" and answered_by(inference, "iris-knn") == "1"

    wait_until(lambda: on_every_worker(system.address, serves_3_and_keeps_1),
               what="version 3 answering on every worker, the default still 1")
    with stubs(system.address) as (models, inference):
        promoted = models.PromoteVersion(pb.PromoteVersionRequest(model="iris-knn", version="3"), timeout=60)
        assert promoted.version == "3" and promoted.previous_version == "1"
        assert answered_by(inference, "iris-knn") == "3"
        policy = models.SetVersionPolicy(pb.SetVersionPolicyRequest(
            model="iris-knn", policy=pb.VersionPolicy(latest=pb.VersionPolicy.Latest(count=1))), timeout=60)
        assert list(policy.versions) == ["3"] and policy.policy.latest.count == 1
        assert version_states(models, "iris-knn") == {
            "3": "VERSION_STATE_READY", "2": "VERSION_STATE_AVAILABLE", "1": "VERSION_STATE_AVAILABLE"
        }
        models.SetVersionPolicy(pb.SetVersionPolicyRequest(model="iris-knn"), timeout=60)  # back to all
        assert set(version_states(models, "iris-knn").values()) == {"VERSION_STATE_READY"}


def test_without_redis_changes_are_refused_and_serving_goes_on(model_repository: Path, tmp_path: Path) -> None:
    repository = tmp_path / "models"
    (repository / "iris-knn").mkdir(parents=True)
    add_version(model_repository, repository, "iris-knn", "1")
    service = start_inference(repository, tmp_path, PROTOSERVE_INFERENCE_WORKERS="1", PROTOSERVE_REDIS_URL="", REDIS_URL="")
    try:
        with stubs(service.address) as (models, inference):
            error = rpc_error(models.PromoteVersion, pb.PromoteVersionRequest(model="iris-knn", version="1"))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "PROTOSERVE_REDIS_URL" in error.details()
            assert version_states(models, "iris-knn") == {"1": "VERSION_STATE_READY"}
            assert answered_by(inference, "iris-knn") == "1"
    finally:
        service.terminate()
