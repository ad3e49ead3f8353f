"""Wires the model lifecycle of one inference worker from settings: store, follower, core, servicer."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from inference_svc.core import InferenceCore
from inference_svc.lifecycle import grpc_api
from inference_svc.lifecycle.core import LifecycleCore
from inference_svc.lifecycle.follower import ServingFollower
from inference_svc.lifecycle.local_state import LocalStateStore
from inference_svc.lifecycle.serving_state import ModelServing, ServingStateStore, StateStore
from inference_svc.redis_client import RedisSettings
from inference_svc.settings import InferenceSettings
from protoserve_runtime.redis_clients import async_client
from protoserve_runtime.server import ServiceBinding
from protoserve_runtime.settings import from_env

log = logging.getLogger(__name__)


@dataclass
class LifecycleParts:
    core: LifecycleCore
    follower: ServingFollower
    binding: ServiceBinding
    servicer: grpc_api.ModelServicer

    async def start(self) -> None:
        """Read the serving state and load what it wants (before the worker reports ready)."""
        await self.follower.refresh(force=True)
        await self.follower.reconcile()

    async def close(self) -> None:
        await self.follower.store.close()


def state_store(state_file: Path | None = None) -> StateStore:
    """The serving state in the Redis every replica shares, else in a file (state_file, or a
    private one) that only this process's siblings share."""
    redis_settings = from_env(RedisSettings)
    if redis_settings.url:
        return ServingStateStore(async_client(redis_settings.url), redis_settings.redis_prefix)
    return LocalStateStore(state_file or Path(tempfile.mkdtemp(prefix="protoserve-state-")) / "serving-state.json")


def build_lifecycle(inference: InferenceCore, settings: InferenceSettings, state_file: Path | None = None) -> LifecycleParts:
    """With Redis the serving state is shared by every replica; without, by this replica's workers
    (state_file, shared by the supervisor) and the lifecycle's changes answer FAILED_PRECONDITION."""
    store = state_store(state_file)

    def publish(states: dict[str, ModelServing]) -> None:
        inference.serving = states

    follower = ServingFollower(
        inference.repository, store, publish, inference.drop_version,
        settings.serving_state_poll_seconds, settings.repository_poll_seconds,
    )
    core = LifecycleCore(inference, follower)
    servicer = grpc_api.ModelServicer(core)
    return LifecycleParts(core, follower, grpc_api.binding(core, servicer), servicer)
