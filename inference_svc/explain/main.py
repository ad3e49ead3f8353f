"""Composition root of the explain service: settings -> repository -> explain core -> gRPC server."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from threadpoolctl import threadpool_limits

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
from protoserve_runtime.workers import (
    ReadyBoard,
    WorkerGroup,
    follow_siblings,
    requested_workers,
    run_workers,
    wait_for_siblings,
    worker_count,
)

log = logging.getLogger(__name__)


def build_core(shared: InferenceSettings, settings: ExplainSettings) -> ExplainCore:
    repository = ModelRepository(shared.model_repository, shared.trusted_types)
    limits = InputLimits(max_rows=shared.max_rows, max_text_length=shared.max_text_length)
    return ExplainCore(repository, limits, settings)


def build_follower(core: ExplainCore, shared: InferenceSettings, state_file: Path | None = None) -> ServingFollower:
    """The explain service follows the serving state and the repository as the inference workers
    do: new versions are loaded when they appear, and a call naming no version explains the default.
    Without Redis its workers share state_file (they only read it: nothing here changes it)."""

    def publish(states: dict[str, ModelServing]) -> None:
        core.serving = states

    return ServingFollower(core.repository, state_store(state_file), publish, core.drop_version,
                           shared.serving_state_poll_seconds, shared.repository_poll_seconds)


async def serve(
    shared: InferenceSettings, settings: ExplainSettings, board: ReadyBoard | None = None, index: int = 0,
    state_file: Path | None = None,
) -> None:
    """Run one worker; with a shared board it reports SERVING only while every worker is ready."""
    board = board or ReadyBoard(1)
    # An explanation's numpy work is small matrices, and the service scales by processes: more BLAS
    # threads only spin against other work (a Gaussian process's 1,600-row mean took 2-3x longer).
    threadpool_limits(1)
    core = build_core(shared, settings)
    follower = build_follower(core, shared, state_file)

    async def load() -> None:
        await follower.refresh(force=True)
        await follower.reconcile()
        if not core.repository.names():
            log.warning("no models found", extra={"model_repository": str(shared.model_repository)})
        await asyncio.to_thread(core.warm)
        await wait_for_siblings(board, index)

    async def follow(server: GrpcServer) -> None:
        following = asyncio.create_task(follower.run())
        try:
            await follow_siblings(board, server.set_serving)
        finally:
            following.cancel()

    async def close() -> None:
        board.set(index, False)
        await follower.store.close()
        core.close()

    options = ServerOptions(settings.explain_address, shared.max_message_bytes, shared.grace_seconds,
                            reuse_port=board.size > 1)
    serve_metrics(settings.explain_metrics_address, offset=index)
    wrappers = [measure_rpcs, *auth.handler_wrappers(from_env(auth.AuthSettings))]
    await run_server("explain", [grpc_api.binding(core)], options, load, close, wrappers, monitor=follow)


def worker_main(shared: InferenceSettings, settings: ExplainSettings, board: ReadyBoard, index: int, state_file: Path) -> None:
    """Entry point of one worker process."""
    json_logging.configure("explain", shared.log_level)
    asyncio.run(serve(shared, settings, board, index, state_file))


def main() -> None:
    workers = requested_workers("inference_svc.explain.main", "the explain service")
    shared, settings = from_env(InferenceSettings), from_env(ExplainSettings)
    if workers is not None:
        settings = from_env(ExplainSettings, explain_workers=workers)
    json_logging.configure("explain", shared.log_level)
    group = WorkerGroup("explain", settings.explain_address, shared.grace_seconds)
    run_workers(
        group,
        worker_count(settings.explain_workers),
        lambda: asyncio.run(serve(shared, settings)),
        "inference_svc.explain.main",
        (shared, settings),
    )


if __name__ == "__main__":
    main()
