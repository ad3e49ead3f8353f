"""Where the inference service's Redis is and how to connect to it (jobs and the prediction cache).

``PROTOSERVE_REDIS_URL`` wins over ``REDIS_URL``; with neither, jobs answer UNAVAILABLE and the
prediction cache is off. Every key starts with ``PROTOSERVE_REDIS_PREFIX`` so that several
deployments (or test runs) can share one Redis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from protoserve_runtime.settings import SettingsError, setting


@dataclass(frozen=True)
class RedisSettings:
    redis_url: str = setting("", "Redis for jobs and the prediction cache (REDIS_URL is read when this is empty)")
    redis_prefix: str = setting("protoserve", "prefix of every Redis key this service writes")
    cache_enabled: bool = setting(True, "cache Predict results of deterministic models in Redis")
    cache_ttl_seconds: int = setting(3600, "how long a cached prediction is kept")

    @property
    def url(self) -> str:
        return self.redis_url or os.environ.get("REDIS_URL", "")

    def validate(self) -> None:
        if not self.redis_prefix or any(c.isspace() for c in self.redis_prefix):
            raise SettingsError("PROTOSERVE_REDIS_PREFIX must be a non-empty word")
        if self.cache_ttl_seconds < 1:
            raise SettingsError("PROTOSERVE_CACHE_TTL_SECONDS must be at least 1")


# A restarted Redis drops pooled connections; a command is retried on a fresh one, for ~3 s.
_BACKOFF = ExponentialBackoff(cap=1.0, base=0.05)
_RETRIES = 7


def async_client(url: str) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=10, retry=AsyncRetry(_BACKOFF, _RETRIES),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    )


def fast_async_client(url: str) -> redis.asyncio.Redis:
    """For the cache on the Predict path: fail fast and never retry, the model can answer instead."""
    return redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=0.25, socket_timeout=0.5, retry=AsyncRetry(_BACKOFF, 0)
    )


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=30, retry=Retry(_BACKOFF, _RETRIES),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    )
