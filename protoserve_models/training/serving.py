"""The engine's view of the serving state (inference_svc/lifecycle/serving_state.py), for a sync caller."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from protoserve_models import serving_state


@dataclass(frozen=True)
class RedisServing:
    client: redis.Redis
    prefix: str

    def default_version(self, model: str) -> str:
        return serving_state.default_version(self.client, self.prefix, model)

    def promote(self, model: str, version: str) -> str:
        return serving_state.promote_version(self.client, self.prefix, model, version)
