"""Wires the Redis-backed parts of the inference service from settings: JobService and the cache."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from inference_svc.cache import PredictionCache
from inference_svc.core import InferenceCore
from inference_svc.jobs import grpc_api
from inference_svc.jobs.core import JobCore
from inference_svc.jobs.record import JobKeys
from inference_svc.jobs.settings import JobSettings
from inference_svc.redis_client import RedisSettings
from protoserve_runtime.redis_clients import async_client, fast_async_client
from protoserve_runtime.server import ServiceBinding
from protoserve_runtime.settings import from_env

log = logging.getLogger(__name__)


@dataclass
class RedisParts:
    jobs: JobCore
    binding: ServiceBinding
    cache: PredictionCache | None

    async def close(self) -> None:
        await self.jobs.close()
        if self.cache is not None:
            await self.cache.close()


def build_jobs(core: InferenceCore) -> RedisParts:
    """Always serves JobService; without Redis its calls answer UNAVAILABLE and Predict is uncached."""
    redis_settings = from_env(RedisSettings)
    keys = JobKeys(redis_settings.redis_prefix)
    url = redis_settings.url
    if not url:
        log.warning("no Redis configured (PROTOSERVE_REDIS_URL): jobs unavailable, predictions uncached")
    if url and redis_settings.cache_enabled:
        core.cache = PredictionCache(fast_async_client(url), redis_settings.redis_prefix, redis_settings.cache_ttl_seconds)
    jobs = JobCore(core, async_client(url) if url else None, keys, from_env(JobSettings))
    return RedisParts(jobs, grpc_api.binding(jobs), core.cache)
