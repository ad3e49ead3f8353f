"""Jobs end to end: submit, poll, watch and page through results; the service's answers to bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from protoserve.inference.v1 import inference_service_pb2 as inference_pb
from protoserve.jobs.v1 import job_service_pb2 as pb

from tests.jobs.harness import all_results, csv_payload, sample_rows, structs, wait_final

ROWS = 10_000


def assert_same_predictions(got: list[Any], expected: list[Any]) -> None:
    assert len(got) == len(expected)
    for mine, direct in zip(got, expected):
        assert mine.WhichOneof("result") == direct.WhichOneof("result")
        if direct.HasField("classification"):
            assert mine.classification.label == direct.classification.label
            assert [p.label for p in mine.classification.probabilities] == [p.label for p in direct.classification.probabilities]
            assert [p.probability for p in mine.classification.probabilities] == pytest.approx(
                [p.probability for p in direct.classification.probabilities], rel=1e-9, abs=1e-12)
        else:
            assert mine.regression.value == pytest.approx(direct.regression.value, rel=1e-9)
            assert mine.regression.variance == pytest.approx(direct.regression.variance, rel=1e-6, abs=1e-9)


def submit_request(model: str, rows: list[dict[str, Any]], how: str, key: str = "") -> pb.SubmitJobRequest:
    request = pb.SubmitJobRequest(model=model, idempotency_key=key)
    if how == "csv":
        request.payload, request.payload_format = csv_payload(rows), pb.PAYLOAD_FORMAT_CSV
    elif how == "jsonl":
        request.payload = "\n".join(json.dumps(r) for r in rows).encode()
        request.payload_format = pb.PAYLOAD_FORMAT_JSON_LINES
    else:
        request.rows.extend(structs(rows))
    return request


@pytest.mark.parametrize(
    ("model", "how"),
    [("iris-knn", "csv"), ("sentiment", "jsonl"), ("regression-gp", "rows"), ("risk", "csv")],
)
def test_job_results_equal_a_direct_predict(
    model: str, how: str, model_repository: Path, job_stub, predict_stub, job_workers
) -> None:
    rows = sample_rows(model_repository, model, ROWS)
    job = job_stub.SubmitJob(submit_request(model, rows, how), timeout=60).job
    assert job.state == pb.JOB_STATE_QUEUED and job.rows_total == ROWS and job.version == "1"

    watched = [r.job for r in job_stub.WatchJob(pb.WatchJobRequest(job_id=job.job_id), timeout=240)]
    assert watched[-1].state == pb.JOB_STATE_SUCCEEDED
    assert all(w.state not in (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED) for w in watched[:-1])
    done = [w.rows_done for w in watched]
    assert done == sorted(done) and done[-1] == ROWS

    final = wait_final(job_stub, job.job_id)
    assert final.state == pb.JOB_STATE_SUCCEEDED and final.progress == 1.0 and final.attempts == 1
    assert final.result_pages == ROWS // 500 and final.page_size == 500
    assert final.finish_time.ToNanoseconds() >= final.start_time.ToNanoseconds() >= final.create_time.ToNanoseconds()

    direct = predict_stub.Predict(
        inference_pb.PredictRequest(model=model, rows=structs(rows), skip_cache=True), timeout=120
    ).predictions
    assert_same_predictions(all_results(job_stub, job.job_id), list(direct))


def test_same_idempotency_key_returns_the_same_job(model_repository: Path, job_stub) -> None:
    rows = sample_rows(model_repository, "iris-knn", 5)
    first = job_stub.SubmitJob(submit_request("iris-knn", rows, "rows", key="order-17"), timeout=10).job
    again = job_stub.SubmitJob(submit_request("iris-knn", rows, "rows", key="order-17"), timeout=10).job
    assert again.job_id == first.job_id and again.idempotency_key == "order-17"
    other = job_stub.SubmitJob(submit_request("iris-knn", rows, "rows", key="order-18"), timeout=10).job
    assert other.job_id != first.job_id
    with pytest.raises(grpc.RpcError) as error:
        job_stub.SubmitJob(submit_request("iris-knn", rows[:2], "rows", key="order-17"), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "idempotency_key" in error.value.details() and first.job_id in error.value.details()


def test_list_jobs_pages_newest_first(model_repository: Path, job_stub) -> None:
    rows = sample_rows(model_repository, "iris-knn", 2)
    ids = [job_stub.SubmitJob(submit_request("iris-knn", rows, "rows"), timeout=10).job.job_id for _ in range(3)]
    first = job_stub.ListJobs(pb.ListJobsRequest(page_size=2), timeout=10)
    assert [j.job_id for j in first.jobs] == ids[::-1][:2] and first.next_page_token
    second = job_stub.ListJobs(pb.ListJobsRequest(page_size=2, page_token=first.next_page_token), timeout=10)
    assert second.jobs[0].job_id == ids[0]


IRIS_HEADER = "sepal_length,sepal_width,petal_length,petal_width\n"


@pytest.mark.parametrize(
    ("request_fields", "code", "words"),
    [
        ({"model": "no-such-model", "rows": [{"x": 1.0}]}, grpc.StatusCode.NOT_FOUND, "no-such-model"),
        ({"model": "iris-knn", "payload": (IRIS_HEADER + "5.1,3.5,1.4,0.2\n5.0,abc,1.4,0.2\n").encode(), "payload_format": 1},
         grpc.StatusCode.INVALID_ARGUMENT, "payload: line 3: sepal_width: 'abc' is not a number"),
        ({"model": "iris-knn", "payload": (IRIS_HEADER + "5.1,3.5,1.4,0.2\n5.1,3.5,1.4\n").encode(), "payload_format": 1},
         grpc.StatusCode.INVALID_ARGUMENT, "payload: line 3: expected 4 fields, got 3"),
        ({"model": "iris-knn", "payload": b"sepal_length,petal\n1,2\n", "payload_format": 1},
         grpc.StatusCode.INVALID_ARGUMENT, "payload: line 1: the header must name each feature"),
        ({"model": "iris-knn", "payload": b'{"sepal_length": 1}\n{oops\n', "payload_format": 2},
         grpc.StatusCode.INVALID_ARGUMENT, "payload: line 2: not valid JSON"),
        ({"model": "iris-knn", "payload": b"a,b\n"}, grpc.StatusCode.INVALID_ARGUMENT, "payload_format"),
        ({"model": "iris-knn", "payload": (IRIS_HEADER + "1,1,1,1\n" * 20_001).encode(), "payload_format": 1},
         grpc.StatusCode.INVALID_ARGUMENT, "20001 rows is over the limit of 20000"),
        ({"model": "iris-knn", "payload": b"x" * ((4 << 20) + 1), "payload_format": 1},
         grpc.StatusCode.INVALID_ARGUMENT, "over the limit of 4194304 bytes"),
        ({"model": "iris-knn"}, grpc.StatusCode.INVALID_ARGUMENT, "rows: at least one row is needed"),
        ({"model": "iris-knn", "rows": [{"sepal_length": 1.0}]},
         grpc.StatusCode.INVALID_ARGUMENT, "rows[0].sepal_width: missing"),
    ],
    ids=["unknown-model", "csv-not-a-number", "csv-short-line", "csv-bad-header", "jsonl-bad-json",
         "no-format", "too-many-rows", "payload-too-big", "no-rows", "missing-feature"],
)
def test_bad_submissions_are_refused_clearly(job_stub, request_fields: dict[str, Any], code: grpc.StatusCode, words: str) -> None:
    fields = dict(request_fields)
    rows = fields.pop("rows", [])
    request = pb.SubmitJobRequest(**fields)
    request.rows.extend(structs(rows))
    with pytest.raises(grpc.RpcError) as error:
        job_stub.SubmitJob(request, timeout=30)
    assert error.value.code() == code
    assert words in error.value.details()


def test_unknown_job_is_not_found(job_stub) -> None:
    for call, request in [(job_stub.GetJob, pb.GetJobRequest(job_id="0123abcd")),
                          (job_stub.CancelJob, pb.CancelJobRequest(job_id="0123abcd")),
                          (job_stub.GetJob, pb.GetJobRequest(job_id="../etc"))]:
        with pytest.raises(grpc.RpcError) as error:
            call(request, timeout=10)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        list(job_stub.WatchJob(pb.WatchJobRequest(job_id="0123abcd"), timeout=10))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_cancelling_a_finished_job_fails_precondition(model_repository: Path, job_stub, job_workers) -> None:
    rows = sample_rows(model_repository, "iris-knn", 3)
    job = job_stub.SubmitJob(submit_request("iris-knn", rows, "rows"), timeout=10).job
    assert wait_final(job_stub, job.job_id).state == pb.JOB_STATE_SUCCEEDED
    with pytest.raises(grpc.RpcError) as error:
        job_stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id), timeout=10)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SUCCEEDED" in error.value.details()
