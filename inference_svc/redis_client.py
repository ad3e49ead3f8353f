"""Where the inference service's Redis is and how to connect to it (jobs and the prediction cache).

``PROTOSERVE_REDIS_URL`` wins over ``REDIS_URL``; with neither, jobs answer UNAVAILABLE and the
prediction cache is off. Every key starts with ``PROTOSERVE_REDIS_PREFIX`` so that several
deployments (or test runs) can share one Redis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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
