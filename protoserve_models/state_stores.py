"""Opens the serving-state store a process follows: the Redis every replica shares, else a file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from protoserve_models.local_state import LocalStateStore
from protoserve_models.serving_state import ServingStateStore, StateStore
from protoserve_runtime.redis_clients import async_client
from protoserve_runtime.redis_settings import RedisSettings


def open_state_store(redis: RedisSettings, state_file: Path | None = None) -> StateStore:
    """The serving state in the Redis every replica shares, else in a file (state_file, or a
    private one) that only this process's siblings share."""
    if redis.url:
        return ServingStateStore(async_client(redis.url), redis.redis_prefix)
    return LocalStateStore(state_file or Path(tempfile.mkdtemp(prefix="protoserve-state-")) / "serving-state.json")
