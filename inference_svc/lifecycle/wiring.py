"""Wires the model lifecycle of one inference worker: follower, core and servicer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from inference_svc.core import InferenceCore
from inference_svc.lifecycle import grpc_api
from inference_svc.lifecycle.core import LifecycleCore
from inference_svc.training.core import TrainingCore
from protoserve_models.follower import ServingFollower
from protoserve_models.settings import ModelSettings
from protoserve_models.state_stores import open_state_store
from protoserve_runtime.redis_settings import RedisSettings
from protoserve_runtime.server import ServiceBinding

log = logging.getLogger(__name__)


@dataclass
class LifecycleParts:
    core: LifecycleCore
    follower: ServingFollower
    binding: ServiceBinding

    async def start(self) -> None:
        """Read the serving state and load what it wants (before the worker reports ready)."""
        await self.follower.refresh(force=True)
        await self.follower.reconcile()

    async def close(self) -> None:
        await self.follower.store.close()


def build_lifecycle(
    redis: RedisSettings, models: ModelSettings, inference: InferenceCore, training: TrainingCore | None,
    state_file: Path | None = None,
) -> LifecycleParts:
    """With Redis the serving state is shared by every replica; without, by this replica's workers
    (state_file, shared by the supervisor) and the lifecycle's changes answer FAILED_PRECONDITION."""
    follower = ServingFollower(
        inference.repository, open_state_store(redis, state_file), inference.serving.replace, inference.drop_version,
        models.serving_state_poll_seconds, models.repository_poll_seconds,
    )
    core = LifecycleCore(inference, follower)
    return LifecycleParts(core, follower, grpc_api.binding(grpc_api.ModelServicer(core, training)))
