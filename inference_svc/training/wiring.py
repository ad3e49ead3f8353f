"""Wires the service side of training from settings: TrainModel's checks and its job submission."""

from __future__ import annotations

from inference_svc.jobs.core import JobCore
from inference_svc.training.core import TrainingCore, examples_counter
from protoserve_models.inputs import InputLimits
from protoserve_models.settings import ModelSettings
from protoserve_models.training.engine import build_engine
from protoserve_models.training.settings import TrainingSettings
from protoserve_runtime.redis_clients import sync_client
from protoserve_runtime.redis_settings import RedisSettings


def build_training(
    redis: RedisSettings, models: ModelSettings, settings: TrainingSettings, limits: InputLimits, jobs: JobCore
) -> TrainingCore | None:
    """None without Redis (TrainModel then answers UNAVAILABLE)."""
    if not redis.url:
        return None
    client = sync_client(redis.url)
    engine = build_engine(client, redis, models, settings, limits)
    return TrainingCore(jobs, engine, examples_counter(client, redis.labeled_examples_stream))
