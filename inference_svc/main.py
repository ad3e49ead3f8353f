"""Composition root of the inference service: settings -> repository -> core -> gRPC server."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from inference_svc import events, grpc_api, v2_api
from inference_svc.batching import BatchSettings
from inference_svc.core import InferenceCore
from inference_svc.inputs import InputLimits
from inference_svc.jobs.wiring import build_jobs
from inference_svc.lifecycle.wiring import build_lifecycle
from inference_svc.repository import ModelRepository
from inference_svc.settings import InferenceSettings
from inference_svc.training.wiring import build_training
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


def build_core(settings: InferenceSettings, publisher: events.PredictionEventPublisher | None = None) -> InferenceCore:
    repository = ModelRepository(settings.model_repository, settings.trusted_types, settings.fast_kernels)
    limits = InputLimits(max_rows=settings.max_rows, max_text_length=settings.max_text_length)
    batching = BatchSettings(
        settings.max_batch_size, settings.max_queue_delay_ms / 1000, settings.max_queue_size, settings.inline_max_rows
    )
    return InferenceCore(repository, limits, batching=batching, events=publisher)


async def serve(
    settings: InferenceSettings, board: ReadyBoard | None = None, index: int = 0, state_file: Path | None = None
) -> None:
    """Run one worker; with a shared board it reports SERVING only while every worker is ready.
    It follows the serving state (Redis, else state_file shared by its siblings) and the repository."""
    board = board or ReadyBoard(1)
    serve_metrics(settings.inference_metrics_address, offset=index)
    publisher = events.connect(from_env(events.EventSettings))
    core = build_core(settings, publisher)
    lifecycle = build_lifecycle(core, settings, state_file)
    if publisher is not None:
        publisher.start()
    jobs = build_jobs(core)  # JobService and the prediction cache, both on Redis
    lifecycle.servicer.training = build_training(core, jobs.jobs)  # TrainModel runs as a job

    async def load() -> None:
        await lifecycle.start()
        if not core.repository.names():
            log.warning("no models found", extra={"model_repository": str(settings.model_repository)})
        await wait_for_siblings(board, index)

    async def follow(server: GrpcServer) -> None:
        follower = asyncio.create_task(lifecycle.follower.run())
        try:
            await follow_siblings(board, server.set_serving)
        finally:
            follower.cancel()

    async def close() -> None:
        board.set(index, False)
        await jobs.close()
        await lifecycle.close()
        core.close()
        if publisher is not None:
            await publisher.close()

    options = ServerOptions(
        settings.inference_address, settings.max_message_bytes, settings.grace_seconds, reuse_port=board.size > 1
    )
    bindings = [grpc_api.binding(core), v2_api.binding(core, board.all_ready, lifecycle.core), jobs.binding]
    bindings.append(lifecycle.binding)
    wrappers = [measure_rpcs, *auth.handler_wrappers(from_env(auth.AuthSettings))]
    await run_server("inference", bindings, options, load, close, wrappers, monitor=follow)


def worker_main(settings: InferenceSettings, board: ReadyBoard, index: int, state_file: Path) -> None:
    """Entry point of one worker process."""
    json_logging.configure("inference", settings.log_level)
    asyncio.run(serve(settings, board, index, state_file))


def main() -> None:
    workers = requested_workers("inference_svc.main", "the inference service")
    settings = from_env(InferenceSettings)
    if workers is not None:
        settings = from_env(InferenceSettings, inference_workers=workers)
    json_logging.configure("inference", settings.log_level)
    group = WorkerGroup("inference", settings.inference_address, settings.grace_seconds)
    run_workers(
        group, worker_count(settings.inference_workers), lambda: asyncio.run(serve(settings)), "inference_svc.main", (settings,)
    )


if __name__ == "__main__":
    main()
