"""Wires JobService of the inference service from settings (jobs answer UNAVAILABLE without Redis)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from inference_svc.core import InferenceCore
from inference_svc.jobs.core import JobCore
from protoserve_models.jobs.record import JobKeys
from protoserve_models.jobs.settings import JobSettings
from protoserve_runtime.redis_clients import async_client
from protoserve_runtime.redis_settings import RedisSettings

if TYPE_CHECKING:
    from protoserve_runtime.tracing_sdk import Tracing

log = logging.getLogger(__name__)


def build_jobs(redis: RedisSettings, settings: JobSettings, core: InferenceCore, traced: Tracing | None = None) -> JobCore:
    """traced: when tracing is on, each job keeps the traceparent of the call that submitted it."""
    if not redis.url:
        log.warning("no Redis configured (PROTOSERVE_REDIS_URL): jobs unavailable, predictions uncached")
    client = async_client(redis.url) if redis.url else None
    if traced is None:
        return JobCore(core, client, JobKeys(redis.redis_prefix), settings)
    return JobCore(core, client, JobKeys(redis.redis_prefix), settings, traceparent=traced.traceparent)
