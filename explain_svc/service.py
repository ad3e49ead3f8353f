"""Composition root of one worker of the explain service: settings -> repository -> explain core -> gRPC server.

`explain_svc.main` runs it in its own process, or starts several worker processes that each run it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from threadpoolctl import threadpool_limits

import explain_svc
from explain_svc import grpc_api
from explain_svc.core import ExplainCore
from explain_svc.settings import ExplainSettings
from protoserve_models.follower import ServingFollower
from protoserve_models.inputs import InputLimits
from protoserve_models.repository import ModelRepository
from protoserve_models.serving_state import ServingTable
from protoserve_models.state_stores import open_state_store
from protoserve_runtime import auth, tracing
from protoserve_runtime import logging as json_logging
from protoserve_runtime.metrics import measure_rpcs, serve_metrics
from protoserve_runtime.server import GrpcServer, ServerOptions, run_server
from protoserve_runtime.workers import ReadyBoard, follow_siblings, wait_for_siblings

log = logging.getLogger(__name__)


def build_core(settings: ExplainSettings, serving: ServingTable) -> ExplainCore:
    models = settings.models
    repository = ModelRepository(models.model_repository, models.trusted_types)
    limits = InputLimits(max_rows=models.max_rows, max_text_length=models.max_text_length)
    return ExplainCore(repository, limits, settings, serving)


def build_follower(core: ExplainCore, settings: ExplainSettings, state_file: Path | None = None) -> ServingFollower:
    """The explain service follows the serving state and the repository as the inference workers
    do: new versions are loaded when they appear, and a call naming no version explains the default.
    Without Redis its workers share state_file (they only read it: nothing here changes it)."""
    models = settings.models
    return ServingFollower(core.repository, open_state_store(settings.redis, state_file), core.serving.replace,
                           core.drop_version, models.serving_state_poll_seconds, models.repository_poll_seconds)


async def serve(
    settings: ExplainSettings, board: ReadyBoard | None = None, index: int = 0, state_file: Path | None = None
) -> None:
    """Run one worker; with a shared board it reports SERVING only while every worker is ready."""
    board = board or ReadyBoard(1)
    traced = tracing.start("explain", tracing.TracingConfig.from_environ(settings.server.traces_file))  # in this worker
    # An explanation's numpy work is small matrices, and the service scales by processes: more BLAS
    # threads only spin against other work (a Gaussian process's 1,600-row mean took 2-3x longer).
    threadpool_limits(1)
    core = build_core(settings, ServingTable())
    follower = build_follower(core, settings, state_file)

    async def load() -> None:
        await follower.refresh(force=True)
        await follower.reconcile()
        if not core.repository.names():
            log.warning("no models found", extra={"model_repository": str(settings.models.model_repository)})
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
        if traced is not None:
            traced.shutdown()

    server = settings.server
    options = ServerOptions(settings.addresses.explain_address, server.max_message_bytes, server.grace_seconds,
                            reuse_port=board.size > 1)
    serve_metrics(settings.explain_metrics_address, offset=index, restarts=settings.server.restarts)
    wrappers = [*(traced.grpc_wrappers() if traced else ()), measure_rpcs, *auth.handler_wrappers(settings.auth)]
    await run_server("explain", explain_svc.__version__, [grpc_api.binding(core)], options, load, close, wrappers, monitor=follow)


def worker_main(settings: ExplainSettings, board: ReadyBoard, index: int, state_file: Path) -> None:
    """Entry point of one worker process."""
    json_logging.configure("explain", settings.server.log_level, settings.server.log_format)
    asyncio.run(serve(settings, board, index, state_file))
