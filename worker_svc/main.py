"""Composition root of the job worker: settings -> repository, Redis, training engine -> worker loop."""

from __future__ import annotations

import os
import signal
import socket
import sys

from protoserve_models.inputs import InputLimits
from protoserve_models.jobs.record import JobKeys
from protoserve_models.repository import ModelRepository
from protoserve_models.training.engine import build_engine
from protoserve_runtime import logging as json_logging
from protoserve_runtime import tracing
from protoserve_runtime.redis_clients import sync_client
from protoserve_runtime.settings import from_env
from worker_svc.settings import WorkerSettings
from worker_svc.training_runner import TrainingRunner
from worker_svc.worker import Worker, ensure_group


def main() -> None:
    settings = from_env(WorkerSettings)
    json_logging.configure("worker", settings.server.log_level, settings.server.log_format)
    if not settings.redis.url:
        print("protoserve worker needs Redis: set PROTOSERVE_REDIS_URL or REDIS_URL", file=sys.stderr)
        sys.exit(2)
    models = settings.models
    repository = ModelRepository(models.model_repository, models.trusted_types)
    repository.load_all()
    client = sync_client(settings.redis.url)
    keys = JobKeys(settings.redis.redis_prefix)
    ensure_group(client, keys)
    limits = InputLimits(max_rows=models.max_rows, max_text_length=models.max_text_length)
    engine = build_engine(client, settings.redis, models, settings.training, limits)
    # Heartbeats well inside the visibility timeout: a fit can outlast it.
    training = TrainingRunner(engine, settings.jobs.job_visibility_timeout_seconds / 4)
    traced = tracing.start("worker", tracing.TracingConfig.from_environ(settings.server.traces_file))
    spans = None
    if traced is not None:
        from worker_svc.traced import TracedJobSpans  # imports OpenTelemetry: only when on

        spans = TracedJobSpans(traced)
    worker = Worker(repository, client, keys, settings.jobs, f"{socket.gethostname()}-{os.getpid()}", training, spans)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop.set())
    try:
        worker.run()
    finally:
        client.close()
        if traced is not None:
            traced.shutdown()


if __name__ == "__main__":
    main()
