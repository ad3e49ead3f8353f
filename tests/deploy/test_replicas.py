"""Several inference replicas behind the gateway, as `protoserve up --replicas inference=3` runs them:
one is killed under load and under 0.1% of requests fail."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from protoserve_cli.main import parser
from protoserve_runtime.services import METRICS_PORT_STRIDE, parse_replicas, replica_addresses, shift_port
from tests.conftest import start_inference
from tests.gateway.conftest import start_gateway
from tests.gateway.test_rest import IRIS_ROW

REQUESTS = 2000
CLIENTS = 4
KILL_AFTER = 400


def test_replicas_take_consecutive_ports_and_bad_counts_are_refused() -> None:
    assert parser().parse_args(["up", "--replicas", "inference=3"]).replicas == ["inference=3"]
    assert parse_replicas(["inference=3"]) == {"inference": 3}
    assert replica_addresses("127.0.0.1:50051", 3) == ["127.0.0.1:50051", "127.0.0.1:50052", "127.0.0.1:50053"]
    assert shift_port("0.0.0.0:9100", 2 * METRICS_PORT_STRIDE) == "0.0.0.0:9120"  # replica 3's /metrics
    for bad in ("inference", "inference=0", "inference=two", "nosuch=2"):
        with pytest.raises(ValueError, match="NAME=N"):
            parse_replicas([bad])


def test_killing_one_replica_under_load_fails_under_a_thousandth_of_requests(model_repository: Path, tmp_path: Path) -> None:
    replicas = []
    for index in range(3):
        (tmp_path / str(index)).mkdir()
        # One worker each: killing the process kills the whole replica.
        replicas.append(start_inference(model_repository, tmp_path / str(index), PROTOSERVE_INFERENCE_WORKERS="1",
                                        PROTOSERVE_LOG_LEVEL="warning"))
    gateway = start_gateway(tmp_path, [r.address for r in replicas], PROTOSERVE_LOG_LEVEL="warning")
    counter = iter(range(REQUESTS))
    lock = threading.Lock()
    failures: list[str] = []
    done = 0
    killed = threading.Event()

    def client() -> None:
        nonlocal done
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                try:
                    response = http.post("/v1/models/iris-knn:predict", json={"rows": [IRIS_ROW]})
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                with lock:
                    done += 1
                    if done == KILL_AFTER:
                        replicas[1].kill()  # SIGKILL mid-load: in-flight calls on it break
                        killed.set()

    try:
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert killed.is_set() and done == REQUESTS
        print(f"replica killed after {KILL_AFTER} requests: {len(failures)} of {REQUESTS} failed")
        assert len(failures) * 1000 < REQUESTS, failures
    finally:
        gateway.terminate()
        for replica in replicas:
            replica.kill()
