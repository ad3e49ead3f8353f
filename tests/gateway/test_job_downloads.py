"""Jobs over REST end to end: 202 with a Location, poll, then the results as CSV and JSON lines."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from protoserve.inference.v1 import inference_service_pb2_grpc

from tests.gateway.conftest import GatewayProcess, start_gateway
from tests.harness import ServiceProcess
from tests.inference.rows import predict_request
from tests.jobs.conftest import job_workers, jobs_env, jobs_service  # noqa: F401  (fixtures)
from tests.jobs.harness import sample_rows


@pytest.fixture(scope="module")
def jobs_gateway(jobs_service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:  # noqa: F811
    gateway = start_gateway(tmp_path_factory.mktemp("jobs-gateway"), [jobs_service.address])
    yield gateway
    gateway.terminate()


def test_submit_poll_and_download(jobs_gateway: GatewayProcess, jobs_service: ServiceProcess,  # noqa: F811
                                  job_workers, model_repository: Path) -> None:  # noqa: F811
    rows = sample_rows(model_repository, "iris-knn", 1_200)  # three result pages of 500
    with httpx.Client(base_url=jobs_gateway.url, timeout=60) as http:
        submitted = http.post("/v1/jobs", json={"model": "iris-knn", "rows": rows})
        assert submitted.status_code == 202, submitted.text
        location = submitted.headers["location"]
        deadline = time.monotonic() + 240
        while (job := http.get(location, params={"skip_results": "true"}).json()["job"])["state"] in (
            "JOB_STATE_QUEUED", "JOB_STATE_RUNNING"
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["state"] == "JOB_STATE_SUCCEEDED", job
        as_csv = http.get(f"{location}/results", params={"format": "csv"})
        as_jsonl = http.get(f"{location}/results", params={"format": "jsonl"})
        bad_format = http.get(f"{location}/results", params={"format": "xml"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    lines = [json.loads(line) for line in as_jsonl.text.splitlines()]
    assert [int(r["row"]) for r in table] == list(range(1_200)) == [r["row"] for r in lines]
    options = [("grpc.max_receive_message_length", 64 << 20)]
    with grpc.insecure_channel(jobs_service.address, options=options) as grpc_channel:
        direct = inference_service_pb2_grpc.InferenceServiceStub(grpc_channel).Predict(
            predict_request("iris-knn", rows), timeout=60
        )
    expected = [p.classification.label for p in direct.predictions]
    assert [r["label"] for r in table] == expected == [r["label"] for r in lines]
    assert all(abs(float(r["p_setosa"]) - line["p_setosa"]) < 1e-12 for r, line in zip(table, lines))
    assert bad_format.status_code == 400 and "format must be one of" in bad_format.json()["message"]
