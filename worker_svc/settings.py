"""Settings of the job worker; every group is shared with the inference service, which submits its work."""

from __future__ import annotations

from dataclasses import dataclass

from protoserve_models.jobs.settings import JobSettings
from protoserve_models.settings import ModelSettings
from protoserve_models.training.settings import TrainingSettings
from protoserve_runtime.redis_settings import RedisSettings
from protoserve_runtime.settings import ServerSettings, group


@dataclass(frozen=True)
class WorkerSettings:
    server: ServerSettings = group(ServerSettings)
    models: ModelSettings = group(ModelSettings)
    redis: RedisSettings = group(RedisSettings)
    jobs: JobSettings = group(JobSettings)
    training: TrainingSettings = group(TrainingSettings)
