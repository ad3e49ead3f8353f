"""Where the shared Redis is, and the names of what the services share in it.

``PROTOSERVE_REDIS_URL`` wins over ``REDIS_URL``; with neither, what needs Redis is off (jobs answer
UNAVAILABLE, predictions are uncached, no prediction events). Every key a service writes starts with
``PROTOSERVE_REDIS_PREFIX`` so that several deployments (or test runs) can share one Redis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from protoserve_runtime.settings import SettingsError, setting


@dataclass(frozen=True)
class RedisSettings:
    redis_url: str = setting("", "Redis every service shares (REDIS_URL is read when this is empty)")
    redis_prefix: str = setting("protoserve", "prefix of every Redis key of jobs, cache and serving state")
    events_stream: str = setting("protoserve:prediction-events", "the Redis Stream of prediction events")
    labeled_examples_stream: str = setting(
        "protoserve:labeled-examples", "prefix of the per-model Redis Streams of labeled examples (<prefix>:<model>)"
    )

    @property
    def url(self) -> str:
        return self.redis_url or os.environ.get("REDIS_URL", "")

    def validate(self) -> None:
        if not self.redis_prefix or any(c.isspace() for c in self.redis_prefix):
            raise SettingsError("PROTOSERVE_REDIS_PREFIX must be a non-empty word")
