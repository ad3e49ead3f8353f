"""Composition root of the inference service: settings -> repository -> core -> gRPC server."""

from __future__ import annotations

import asyncio
import logging

from inference_svc import grpc_api
from inference_svc.core import InferenceCore
from inference_svc.inputs import InputLimits
from inference_svc.jobs.wiring import build_jobs
from inference_svc.repository import ModelRepository
from inference_svc.settings import InferenceSettings
from protoserve_runtime import logging as json_logging
from protoserve_runtime.server import ServerOptions, run_server
from protoserve_runtime.settings import from_env

log = logging.getLogger(__name__)


def build_core(settings: InferenceSettings) -> InferenceCore:
    repository = ModelRepository(settings.model_repository, settings.trusted_types)
    limits = InputLimits(max_rows=settings.max_rows, max_text_length=settings.max_text_length)
    return InferenceCore(repository, limits)


async def serve(settings: InferenceSettings) -> None:
    core = build_core(settings)
    jobs = build_jobs(core)  # JobService and the prediction cache, both on Redis

    async def load() -> None:
        await asyncio.to_thread(core.repository.load_all)
        loaded = core.repository.names()
        if not loaded:
            log.warning("no models found", extra={"model_repository": str(settings.model_repository)})

    async def close() -> None:
        await jobs.close()
        core.close()

    options = ServerOptions(settings.inference_address, settings.max_message_bytes, settings.grace_seconds)
    await run_server("inference", [grpc_api.binding(core), jobs.binding], options, load, close)


def main() -> None:
    settings = from_env(InferenceSettings)
    json_logging.configure("inference", settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
