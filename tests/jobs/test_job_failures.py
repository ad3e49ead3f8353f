"""Workers and Redis die; jobs are neither lost nor run twice. Real processes, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from protoserve.inference.v1 import inference_service_pb2 as inference_pb
from protoserve.inference.v1 import inference_service_pb2_grpc
from protoserve.jobs.v1 import job_service_pb2 as pb
from protoserve.jobs.v1 import job_service_pb2_grpc as pb_grpc

from protoserve_models.jobs.record import JobKeys
from protoserve_runtime.redis_server import EmbeddedRedis, free_port
from tests.harness import ServiceProcess
from tests.jobs.harness import (
    WorkerProcess,
    all_results,
    channel,
    csv_payload,
    redis_env,
    sample_rows,
    start_service,
    structs,
    wait_final,
)
from tests.jobs.test_jobs import assert_same_predictions


class System:
    """A service and its workers on one Redis key prefix."""

    def __init__(self, model_repository: Path, log_dir: Path, env: dict[str, str]) -> None:
        self.model_repository = model_repository
        self.log_dir = log_dir
        self.env = env
        self.keys = JobKeys(env["PROTOSERVE_REDIS_PREFIX"])
        self.redis = redis.Redis.from_url(env["PROTOSERVE_REDIS_URL"])
        self.service: ServiceProcess = start_service(model_repository, log_dir, env)
        self.workers: list[WorkerProcess] = []
        self._channel = channel(self.service.address)
        ch = next(self._channel)
        self.jobs = pb_grpc.JobServiceStub(ch)
        self.inference = inference_service_pb2_grpc.InferenceServiceStub(ch)

    def worker(self) -> WorkerProcess:
        worker = WorkerProcess(self.model_repository, self.env, self.log_dir / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def events_for(self, job_id: str) -> list[str]:
        return [f[b"state"].decode() for _, f in self.redis.xrange(self.keys.events) if f[b"job"].decode() == job_id]

    def queue_is_empty(self) -> bool:
        return self.redis.xlen(self.keys.stream) == 0 and self.redis.xpending(self.keys.stream, self.keys.group)["pending"] == 0

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self._channel.close()  # type: ignore[attr-defined]
        self.service.terminate()
        self.redis.close()


@pytest.fixture
def system(model_repository: Path, redis_url: str, tmp_path: Path) -> Iterator[System]:
    # Small batches so a job is mid-way for a while; a short visibility timeout so reclaiming is quick.
    env = redis_env(redis_url, PROTOSERVE_JOB_BATCH_SIZE="100", PROTOSERVE_JOB_PAGE_SIZE="100",
                    PROTOSERVE_JOB_VISIBILITY_TIMEOUT_SECONDS="2")
    built = System(model_repository, tmp_path, env)
    yield built
    built.close()


def wait_running(system: System, job_id: str) -> pb.Job:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = system.jobs.GetJob(pb.GetJobRequest(job_id=job_id, skip_results=True), timeout=10).job
        if job.state == pb.JOB_STATE_RUNNING and job.rows_done > 0:
            return job
        assert job.state in (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING), job
        time.sleep(0.02)
    raise AssertionError("the job never ran")


def frozen_mid_job(system: System, worker: WorkerProcess, job_id: str) -> pb.Job:
    """Stop the worker with SIGSTOP while it is inside the job, and return the job as it stands."""
    wait_running(system, job_id)
    os.kill(worker.pid, signal.SIGSTOP)
    job = system.jobs.GetJob(pb.GetJobRequest(job_id=job_id, skip_results=True), timeout=10).job
    assert job.state == pb.JOB_STATE_RUNNING and 0 < job.rows_done < job.rows_total, "the job was not mid-way"
    return job


def submit_iris(system: System, count: int) -> tuple[pb.Job, list[dict]]:
    rows = sample_rows(system.model_repository, "iris-knn", count)
    request = pb.SubmitJobRequest(model="iris-knn", payload=csv_payload(rows), payload_format=pb.PAYLOAD_FORMAT_CSV)
    return system.jobs.SubmitJob(request, timeout=60).job, rows


def direct_predictions(system: System, rows: list[dict]) -> list:
    out: list = []
    for start in range(0, len(rows), 10_000):
        request = inference_pb.PredictRequest(model="iris-knn", rows=structs(rows[start:start + 10_000]), skip_cache=True)
        out.extend(system.inference.Predict(request, timeout=60).predictions)
    return out


def test_kill_9_mid_job_finishes_exactly_once(system: System) -> None:
    first = system.worker()
    job, rows = submit_iris(system, 20_000)
    frozen_mid_job(system, first, job.job_id)
    os.kill(first.pid, signal.SIGKILL)
    first.process.wait()

    system.worker()  # reclaims the job after the visibility timeout
    final = wait_final(system.jobs, job.job_id)
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
    assert final.attempts == 2 and "attempt 1 stopped without finishing" in final.error
    assert_same_predictions(all_results(system.jobs, job.job_id), direct_predictions(system, rows))
    assert system.events_for(job.job_id) == ["SUCCEEDED"]
    assert system.queue_is_empty()
    # The dead run's partial pages may linger until they expire; the results are one whole run's.
    pages = system.redis.scan_iter(match=f"{system.keys.record(job.job_id)}:run:*:page:*", count=1000)
    per_run = Counter(key.decode().split(":run:")[1].split(":")[0] for key in pages)
    assert final.result_pages == 200 and 200 in per_run.values() and len(per_run) <= 2


def test_cancel_stops_a_running_job_at_its_next_batch(system: System) -> None:
    worker = system.worker()
    job, _ = submit_iris(system, 20_000)
    frozen_mid_job(system, worker, job.job_id)
    cancelled = system.jobs.CancelJob(pb.CancelJobRequest(job_id=job.job_id), timeout=10).job
    assert cancelled.state == pb.JOB_STATE_CANCELLED
    os.kill(worker.pid, signal.SIGCONT)
    deadline = time.monotonic() + 60
    while not system.queue_is_empty():  # the worker acknowledges the job at its next batch
        assert time.monotonic() < deadline, "the worker did not let go of the cancelled job"
        time.sleep(0.05)
    final = system.jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), timeout=10)
    assert final.job.state == pb.JOB_STATE_CANCELLED and final.job.rows_done < final.job.rows_total
    assert len(final.predictions) == 0 and final.job.result_pages == 0
    assert system.events_for(job.job_id) == ["CANCELLED"]
    assert '"reason": "cancelled"' in worker.log_text()


def test_a_job_out_of_attempts_is_failed_and_dead_lettered(model_repository: Path, redis_url: str, tmp_path: Path) -> None:
    env = redis_env(redis_url, PROTOSERVE_JOB_BATCH_SIZE="100", PROTOSERVE_JOB_PAGE_SIZE="100",
                    PROTOSERVE_JOB_VISIBILITY_TIMEOUT_SECONDS="1", PROTOSERVE_JOB_MAX_ATTEMPTS="1")
    system = System(model_repository, tmp_path, env)
    try:
        first = system.worker()
        job, _ = submit_iris(system, 20_000)
        frozen_mid_job(system, first, job.job_id)
        os.kill(first.pid, signal.SIGKILL)
        first.process.wait()
        system.worker()
        final = wait_final(system.jobs, job.job_id)
        assert final.state == pb.JOB_STATE_FAILED
        assert "gave up after 1 attempts" in final.error and "stopped without finishing" in final.error
        dead = [f for _, f in system.redis.xrange(system.keys.dead_letter) if f[b"job"].decode() == job.job_id]
        assert len(dead) == 1 and b"gave up" in dead[0][b"error"]
        assert system.queue_is_empty()
    finally:
        system.close()


def test_queued_jobs_survive_a_redis_crash(model_repository: Path, tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    url = server.start()
    env = redis_env(url)
    system = System(model_repository, tmp_path, env)
    try:
        ids = [submit_iris(system, 50)[0].job_id for _ in range(30)]
        ids.append(submit_iris(system, 10_000)[0].job_id)
        assert server.process is not None
        server.process.kill()  # SIGKILL: no shutdown, no final AOF flush
        server.process.wait()
        server.start()
        system.worker()
        for job_id in ids:
            assert wait_final(system.jobs, job_id).state == pb.JOB_STATE_SUCCEEDED
        assert system.queue_is_empty()
    finally:
        try:
            system.close()
        finally:
            server.stop()


def test_a_thousand_jobs_from_fifty_clients_on_three_workers(system: System) -> None:
    for _ in range(3):
        system.worker()
    rows = sample_rows(system.model_repository, "iris-knn", 60)

    async def client(index: int) -> list[str]:
        async with grpc.aio.insecure_channel(system.service.address) as ch:
            stub = pb_grpc.JobServiceStub(ch)
            ids = []
            for n in range(20):
                chunk = rows[(index + n) % 50:(index + n) % 50 + 3]
                response = await stub.SubmitJob(pb.SubmitJobRequest(model="iris-knn", rows=structs(chunk)), timeout=60)
                ids.append(response.job.job_id)
            return ids

    async def submit_all() -> list[str]:
        batches = await asyncio.gather(*(client(i) for i in range(50)))
        return [job_id for batch in batches for job_id in batch]

    ids = asyncio.run(submit_all())
    assert len(set(ids)) == 1000
    deadline = time.monotonic() + 240
    while system.redis.xlen(system.keys.events) < 1000:
        assert time.monotonic() < deadline, "not every job finished"
        time.sleep(0.2)
    counts = Counter(f[b"job"].decode() for _, f in system.redis.xrange(system.keys.events))
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    expected = {n: system.inference.Predict(inference_pb.PredictRequest(model="iris-knn", rows=structs(rows[n:n + 3])),
                                            timeout=10).predictions for n in range(50)}
    for index, job_id in enumerate(ids):
        response = system.jobs.GetJob(pb.GetJobRequest(job_id=job_id), timeout=10)
        assert response.job.state == pb.JOB_STATE_SUCCEEDED and response.job.attempts == 1
        client_index, n = divmod(index, 20)
        assert_same_predictions(list(response.predictions), list(expected[(client_index + n) % 50]))
    assert system.queue_is_empty()
