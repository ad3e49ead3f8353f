"""Wires training from settings: the engine (workers and service) and the core (service)."""

from __future__ import annotations

import redis

from inference_svc.core import InferenceCore
from inference_svc.jobs.core import JobCore
from inference_svc.jobs.settings import JobSettings
from inference_svc.redis_client import RedisSettings
from inference_svc.training.core import TrainingCore, examples_counter
from inference_svc.training.engine import Engine
from inference_svc.training.feedback import read_examples
from inference_svc.training.job import TrainingRunner
from inference_svc.training.serving import RedisServing
from inference_svc.training.settings import TrainingSettings
from protoserve_runtime.redis_clients import sync_client
from protoserve_runtime.settings import from_env


def build_engine(inference: InferenceCore, client: redis.Redis, prefix: str) -> Engine:
    settings = from_env(TrainingSettings)
    stream = settings.labeled_examples_stream
    return Engine(
        repository=inference.repository.root,
        trusted_types=inference.repository.trusted_types,
        serving=RedisServing(client, prefix),
        margin=settings.promotion_margin,
        examples=lambda model: read_examples(client, stream, model),
        limits=inference.limits,
        max_csv_bytes=settings.training_max_csv_bytes,
    )


def build_runner(inference: InferenceCore, client: redis.Redis, prefix: str, jobs: JobSettings) -> TrainingRunner:
    """For a job worker: heartbeats well inside the visibility timeout."""
    return TrainingRunner(build_engine(inference, client, prefix), jobs.job_visibility_timeout_seconds / 4)


def build_training(inference: InferenceCore, jobs: JobCore) -> TrainingCore | None:
    """For the service; None without Redis (TrainModel then answers UNAVAILABLE)."""
    redis_settings = from_env(RedisSettings)
    if not redis_settings.url:
        return None
    client = sync_client(redis_settings.url)
    engine = build_engine(inference, client, redis_settings.redis_prefix)
    return TrainingCore(jobs, engine, examples_counter(client, from_env(TrainingSettings).labeled_examples_stream))
