"""Several inference replicas behind one gateway: one stops, calls keep succeeding via the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import start_inference
from tests.gateway.conftest import start_gateway
from tests.gateway.test_rest import IRIS_ROW


def test_calls_survive_a_stopped_replica(model_repository: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # One worker each: killing a replica then kills the process that serves its port.
    first = start_inference(model_repository, tmp_path / "a", PROTOSERVE_INFERENCE_WORKERS="1")
    second = start_inference(model_repository, tmp_path / "b", PROTOSERVE_INFERENCE_WORKERS="1")
    gateway = start_gateway(tmp_path, [first.address, second.address])
    try:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            def predict() -> Any:
                response = client.post("/v1/models/iris-knn:predict", json={"rows": [IRIS_ROW]})
                assert response.status_code == 200, response.text
                return response.json()

            for _ in range(6):
                predict()
            replicas = client.get("/healthz").json()["replicas"]
            assert replicas[first.address] and replicas[second.address]
            first.kill()  # abrupt: no draining, the gateway finds out from a failed call
            for _ in range(20):
                assert predict()["predictions"][0]["classification"]["label"] == "setosa"
                assert client.get("/v1/models").status_code == 200
            second.terminate()
            down = client.post("/v1/models/iris-knn:predict", json={"rows": [IRIS_ROW]})
            assert down.status_code == 503 and down.json()["code"] == "UNAVAILABLE"
    finally:
        gateway.terminate()
        first.kill()
        second.kill()
