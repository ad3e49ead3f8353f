"""Wires JobService of the inference service from settings (jobs answer UNAVAILABLE without Redis)."""

from __future__ import annotations

import logging

from inference_svc.core import InferenceCore
from inference_svc.jobs.core import JobCore
from protoserve_models.jobs.record import JobKeys
from protoserve_models.jobs.settings import JobSettings
from protoserve_runtime.redis_clients import async_client
from protoserve_runtime.redis_settings import RedisSettings

log = logging.getLogger(__name__)


def build_jobs(redis: RedisSettings, settings: JobSettings, core: InferenceCore) -> JobCore:
    if not redis.url:
        log.warning("no Redis configured (PROTOSERVE_REDIS_URL): jobs unavailable, predictions uncached")
    return JobCore(core, async_client(redis.url) if redis.url else None, JobKeys(redis.redis_prefix), settings)
