"""Composition root of the monitoring service: settings -> Redis -> consumer, alert evaluator and core -> gRPC server."""

from __future__ import annotations

import asyncio
import logging
import os

import monitoring_svc
from monitoring_svc import grpc_api
from monitoring_svc.aggregates import Keys, Window
from monitoring_svc.alerts import AlertEvaluator, AlertRules
from monitoring_svc.consumer import EventConsumer
from monitoring_svc.core import MonitoringCore
from monitoring_svc.drift import Thresholds
from monitoring_svc.labeled_examples import LabeledExamples
from monitoring_svc.profiles import ProfileStore
from monitoring_svc.settings import MonitoringSettings
from protoserve_runtime import auth, tracing
from protoserve_runtime import logging as json_logging
from protoserve_runtime.metrics import measure_rpcs, serve_metrics
from protoserve_runtime.redis_clients import async_client
from protoserve_runtime.server import ServerOptions, run_server
from protoserve_runtime.settings import SettingsError, from_env

log = logging.getLogger(__name__)


async def serve(settings: MonitoringSettings) -> None:
    url = settings.redis.url
    if not url:
        raise SettingsError("the monitoring service needs Redis: set PROTOSERVE_REDIS_URL or REDIS_URL")
    traced = tracing.start("monitoring", tracing.TracingConfig.from_environ(settings.server.traces_file))
    serve_metrics(settings.monitoring_metrics_address, restarts=settings.server.restarts)
    client = async_client(url)
    keys = Keys(settings.monitoring_key_prefix)
    windows = [Window(name, seconds) for name, seconds in settings.windows]
    profiles = ProfileStore(settings.models.model_repository)
    thresholds = Thresholds(settings.drift_psi_threshold, settings.drift_p_value, settings.drift_oov_increase)
    examples = LabeledExamples(settings.monitoring_key_prefix, settings.redis.labeled_examples_stream,
                               settings.monitoring_example_max_bytes, settings.labeled_examples_max)
    core = MonitoringCore(client, keys, windows, profiles, thresholds, settings.drift_min_rows, settings.alert_window,
                          settings.monitoring_feedback_ttl_seconds, examples)
    consumer = EventConsumer(
        client, settings.redis.events_stream, settings.monitoring_group, settings.monitoring_consumer, keys, windows, profiles,
        settings.monitoring_batch_entries, settings.monitoring_claim_idle_seconds, settings.monitoring_feedback_ttl_seconds,
        examples,
    )
    rules = AlertRules(
        settings.alert_window, settings.alert_drift, settings.alert_accuracy_below, settings.alert_accuracy_min_labeled,
        settings.alert_latency_p99_ms, settings.alert_error_rate_above, settings.alert_min_requests,
    )
    evaluator = AlertEvaluator(core.alerts, rules, core.observe, settings.alert_interval_seconds,
                               f"{settings.monitoring_consumer}:{os.getpid()}")
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def load() -> None:
        await client.ping()  # serving only once Redis answers
        await consumer.ensure_group()
        tasks.append(asyncio.create_task(consumer.run(stop), name="event-consumer"))
        tasks.append(asyncio.create_task(evaluator.run(stop), name="alert-evaluator"))

    async def close() -> None:
        stop.set()  # the consumer finishes the batch it is applying, then stops
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()
        if traced is not None:
            traced.shutdown()

    server = settings.server
    options = ServerOptions(settings.addresses.monitoring_address, server.max_message_bytes, server.grace_seconds)
    wrappers = [*(traced.grpc_wrappers() if traced else ()), measure_rpcs, *auth.handler_wrappers(settings.auth)]
    await run_server("monitoring", monitoring_svc.__version__, [grpc_api.binding(core)], options, load, close, wrappers)


def main() -> None:
    settings = from_env(MonitoringSettings)
    json_logging.configure("monitoring", settings.server.log_level, settings.server.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
