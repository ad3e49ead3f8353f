"""Rows/s of a 100,000-row iris-knn job with 1 and 2 job workers, beside in-process model.predict.

Everything real: an embedded Redis, the inference service, `protoserve worker` processes. For each
worker count the job is submitted as CSV and timed two ways: end to end (SubmitJob sent until
GetJob says SUCCEEDED, parsing and validation included) and the worker's own span (start_time to
finish_time on the job). The in-process figure is LoadedModel.predict on the same validated rows
in one call. One job is one message, so a second worker speeds up a queue of jobs, not one job:
the worker figures are the drain rate of four queued 100,000-row jobs (first start to last finish).

    .venv/bin/python bench/jobs_throughput.py [--rows 100000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import grpc
from protoserve.jobs.v1 import job_service_pb2 as pb
from protoserve.jobs.v1 import job_service_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from protoserve_models.builtin.build import build_models  # noqa: E402
from protoserve_models.inputs import InputLimits, rows_to_inputs  # noqa: E402
from protoserve_models.repository import ModelRepository  # noqa: E402
from protoserve_runtime.redis_server import EmbeddedRedis  # noqa: E402
from tests.jobs.harness import WorkerProcess, csv_payload, redis_env, sample_rows, start_service, wait_final  # noqa: E402

JOBS = 4


def in_process_rate(repository: Path, rows: list[dict], repeat: int) -> float:
    models = ModelRepository(repository)
    models.load("iris-knn", "1")
    model = models.get("iris-knn")
    inputs = rows_to_inputs(model.card, rows, InputLimits(max_rows=len(rows), max_text_length=5000))
    best = min(_timed(lambda: model.predict(inputs)) for _ in range(repeat))
    return len(rows) / best


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def submit(stub: pb_grpc.JobServiceStub, payload: bytes, jobs: int) -> list[str]:
    request = pb.SubmitJobRequest(model="iris-knn", payload=payload, payload_format=pb.PAYLOAD_FORMAT_CSV)
    return [stub.SubmitJob(request, timeout=120).job.job_id for _ in range(jobs)]


def drain_rate(stub: pb_grpc.JobServiceStub, ids: list[str], rows: int) -> float:
    """Rows/s from the first job's start on a worker to the last job's finish."""
    finals = [wait_final(stub, job_id, timeout=600) for job_id in ids]
    assert all(f.state == pb.JOB_STATE_SUCCEEDED for f in finals), finals
    first_start = min(f.start_time.ToNanoseconds() for f in finals)
    last_finish = max(f.finish_time.ToNanoseconds() for f in finals)
    return rows * len(ids) / ((last_finish - first_start) / 1e9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repository = root / "models"
        build_models(repository, ["iris-knn"])
        rows = sample_rows(repository, "iris-knn", args.rows)
        payload = csv_payload(rows)
        print(f"in-process model.predict: {in_process_rate(repository, rows, args.repeat):,.0f} rows/s")
        redis_server = EmbeddedRedis(root / "redis")
        env = redis_env(redis_server.start(), PROTOSERVE_JOB_MAX_ROWS=str(args.rows))
        service = start_service(repository, root, env)
        workers: list[WorkerProcess] = []
        try:
            options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
            with grpc.insecure_channel(service.address, options=options) as channel:
                stub = pb_grpc.JobServiceStub(channel)
                # The queue's drain rate: JOBS jobs queued first, then `count` workers started on them.
                for count in (1, 2):
                    ids = submit(stub, payload, JOBS)
                    workers = [WorkerProcess(repository, env, root / f"worker-{count}-{i}.log") for i in range(count)]
                    rate = drain_rate(stub, ids, args.rows)
                    print(f"{count} worker(s) draining {JOBS} jobs of {args.rows:,} rows: {rate:,.0f} rows/s")
                    for worker in workers:
                        worker.stop()
                # End to end with a warm worker: SubmitJob sent (CSV upload, parsing, validation) until SUCCEEDED.
                workers = [WorkerProcess(repository, env, root / "worker-e2e.log")]
                drain_rate(stub, submit(stub, csv_payload(rows[:1000]), 1), 1000)  # warm-up
                best = 0.0
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    drain_rate(stub, submit(stub, payload, 1), args.rows)
                    best = max(best, args.rows / (time.perf_counter() - started))
                print(f"1 worker, end to end (submit to SUCCEEDED) for {args.rows:,} rows: {best:,.0f} rows/s")
        finally:
            for worker in workers:
                worker.stop()
            service.terminate()
            redis_server.stop()


if __name__ == "__main__":
    main()
