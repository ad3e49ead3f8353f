"""Composition root of the explain service: settings -> repository -> explain core -> gRPC server."""

from __future__ import annotations

import asyncio
import logging

from inference_svc.explain import grpc_api
from inference_svc.explain.core import ExplainCore
from inference_svc.explain.settings import ExplainSettings
from inference_svc.inputs import InputLimits
from inference_svc.lifecycle.follower import ServingFollower
from inference_svc.lifecycle.serving_state import ModelServing
from inference_svc.lifecycle.wiring import state_store
from inference_svc.repository import ModelRepository
from inference_svc.settings import InferenceSettings
from protoserve_runtime import auth
from protoserve_runtime import logging as json_logging
from protoserve_runtime.metrics import measure_rpcs, serve_metrics
from protoserve_runtime.server import GrpcServer, ServerOptions, run_server
from protoserve_runtime.settings import from_env

log = logging.getLogger(__name__)


def build_core(shared: InferenceSettings, settings: ExplainSettings) -> ExplainCore:
    repository = ModelRepository(shared.model_repository, shared.trusted_types)
    limits = InputLimits(max_rows=shared.max_rows, max_text_length=shared.max_text_length)
    return ExplainCore(repository, limits, settings)


def build_follower(core: ExplainCore, shared: InferenceSettings) -> ServingFollower:
    """The explain service follows the serving state and the repository as the inference workers
    do: new versions are loaded when they appear, and a call naming no version explains the default."""

    def publish(states: dict[str, ModelServing]) -> None:
        core.serving = states

    return ServingFollower(core.repository, state_store(), publish, core.drop_version,
                           shared.serving_state_poll_seconds, shared.repository_poll_seconds)


async def serve(shared: InferenceSettings, settings: ExplainSettings) -> None:
    core = build_core(shared, settings)
    follower = build_follower(core, shared)

    async def load() -> None:
        await follower.refresh(force=True)
        await follower.reconcile()
        if not core.repository.names():
            log.warning("no models found", extra={"model_repository": str(shared.model_repository)})
        await asyncio.to_thread(core.warm)

    async def follow(server: GrpcServer) -> None:
        await follower.run()

    async def close() -> None:
        await follower.store.close()
        core.close()

    options = ServerOptions(settings.explain_address, shared.max_message_bytes, shared.grace_seconds)
    serve_metrics(settings.explain_metrics_address)
    wrappers = [measure_rpcs, *auth.handler_wrappers(from_env(auth.AuthSettings))]
    await run_server("explain", [grpc_api.binding(core)], options, load, close, wrappers, monitor=follow)


def main() -> None:
    shared, settings = from_env(InferenceSettings), from_env(ExplainSettings)
    json_logging.configure("explain", shared.log_level)
    asyncio.run(serve(shared, settings))


if __name__ == "__main__":
    main()
