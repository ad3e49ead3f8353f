"""Composition root of one worker of the inference service: settings -> repository -> core -> gRPC server.

`inference_svc.main` runs it in its own process, or starts several worker processes that each run it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import inference_svc
from inference_svc import events, grpc_api, v2_api
from inference_svc.batching import BatchSettings
from inference_svc.cache import PredictionCache
from inference_svc.core import InferenceCore, PredictionSink
from inference_svc.jobs import grpc_api as jobs_api
from inference_svc.jobs.wiring import build_jobs
from inference_svc.lifecycle.wiring import build_lifecycle
from inference_svc.settings import InferenceSettings
from inference_svc.training.wiring import build_training
from protoserve_models.inputs import InputLimits
from protoserve_models.repository import ModelRepository
from protoserve_models.serving_state import ServingTable
from protoserve_runtime import auth, tracing
from protoserve_runtime import logging as json_logging
from protoserve_runtime.metrics import measure_rpcs, serve_metrics
from protoserve_runtime.redis_clients import fast_async_client
from protoserve_runtime.server import GrpcServer, ServerOptions, run_server
from protoserve_runtime.workers import ReadyBoard, follow_siblings, wait_for_siblings

if TYPE_CHECKING:
    from protoserve_runtime.tracing_sdk import Tracing

log = logging.getLogger(__name__)


def input_limits(settings: InferenceSettings) -> InputLimits:
    return InputLimits(max_rows=settings.models.max_rows, max_text_length=settings.models.max_text_length)


def build_cache(settings: InferenceSettings) -> PredictionCache | None:
    """The prediction cache in Redis; None when there is no Redis or caching is off."""
    if not (settings.redis.url and settings.cache_enabled):
        return None
    return PredictionCache(fast_async_client(settings.redis.url), settings.redis.redis_prefix, settings.cache_ttl_seconds)


def build_core(
    settings: InferenceSettings,
    publisher: events.PredictionEventPublisher | None = None,
    cache: PredictionCache | None = None,
    traced: Tracing | None = None,
) -> InferenceCore:
    """traced: when tracing is on, batchers and the event sink that record spans (inference_svc/traced.py)."""
    models = settings.models
    repository = ModelRepository(models.model_repository, models.trusted_types, settings.fast_kernels)
    batching = BatchSettings(
        settings.max_batch_size, settings.max_queue_delay_ms / 1000, settings.max_queue_size, settings.inline_max_rows
    )
    if traced is None:
        return InferenceCore(
            repository, input_limits(settings), batching=batching, events=publisher, cache=cache, serving=ServingTable()
        )
    from inference_svc.traced import TracedEvents, traced_batchers  # imports OpenTelemetry: only when on

    stream = settings.redis.events_stream
    sink: PredictionSink | None = None if publisher is None else TracedEvents(publisher, traced.tracer, stream)
    return InferenceCore(
        repository, input_limits(settings), batching=batching, events=sink, cache=cache, serving=ServingTable(),
        batcher=traced_batchers(traced.tracer),
    )


async def serve(
    settings: InferenceSettings, board: ReadyBoard | None = None, index: int = 0, state_file: Path | None = None
) -> None:
    """Run one worker; with a shared board it reports SERVING only while every worker is ready.
    It follows the serving state (Redis, else state_file shared by its siblings) and the repository."""
    board = board or ReadyBoard(1)
    traced = tracing.start("inference", tracing.TracingConfig.from_environ(settings.server.traces_file))  # in this worker
    serve_metrics(settings.inference_metrics_address, offset=index, restarts=settings.server.restarts)
    publisher = events.connect(settings.redis, settings.events)
    cache = build_cache(settings)
    core = build_core(settings, publisher, cache, traced)
    jobs = build_jobs(settings.redis, settings.jobs, core, traced)  # JobService, on Redis
    training = build_training(settings.redis, settings.models, settings.training, core.limits, jobs)  # TrainModel runs as a job
    lifecycle = build_lifecycle(settings.redis, settings.models, core, training, state_file)
    if publisher is not None:
        publisher.start()

    async def load() -> None:
        await lifecycle.start()
        if not core.repository.names():
            log.warning("no models found", extra={"model_repository": str(settings.models.model_repository)})
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
        if cache is not None:
            await cache.close()
        await lifecycle.close()
        core.close()
        if publisher is not None:
            await publisher.close()
        if traced is not None:
            traced.shutdown()

    server = settings.server
    options = ServerOptions(
        settings.addresses.inference_address, server.max_message_bytes, server.grace_seconds, reuse_port=board.size > 1
    )
    bindings = [
        grpc_api.binding(core), v2_api.binding(core, board.all_ready, lifecycle.core), jobs_api.binding(jobs), lifecycle.binding
    ]
    wrappers = [*(traced.grpc_wrappers() if traced else ()), measure_rpcs, *auth.handler_wrappers(settings.auth)]
    await run_server("inference", inference_svc.__version__, bindings, options, load, close, wrappers, monitor=follow)


def worker_main(settings: InferenceSettings, board: ReadyBoard, index: int, state_file: Path) -> None:
    """Entry point of one worker process."""
    json_logging.configure("inference", settings.server.log_level, settings.server.log_format)
    asyncio.run(serve(settings, board, index, state_file))
