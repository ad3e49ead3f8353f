"""Prometheus metrics shared by every gRPC service: an HTTP /metrics endpoint and a handler
wrapper that counts and times every RPC.

Each service serves /metrics on its own address (a setting of that service); service-specific
metrics (dropped events, drift statistics, batch sizes, ...) are module-level prometheus_client
objects in the module that owns them, registered in the default registry like these.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from protoserve_runtime.handler_wrappers import with_behavior

log = logging.getLogger(__name__)

# Latency buckets from 0.5 ms to 10 s: predictions are fast, batch calls and streams are not.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPC_HANDLED = Counter(
    "protoserve_grpc_server_handled_total",
    "RPCs completed by the server, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
RPC_SECONDS = Histogram(
    "protoserve_grpc_server_handling_seconds",
    "Time the server took to complete an RPC (until the last response of a stream).",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)


PROCESS_RESTARTS = Gauge(
    "protoserve_process_restarts",
    "Times `protoserve up` restarted this service after it died (0 when it runs otherwise; on "
    "Kubernetes, kube_pod_container_status_restarts_total counts them).",
)


def serve_metrics(address: str, offset: int = 0, restarts: int = 0) -> int:
    """Serve /metrics over HTTP on host:port (port 0 picks a free one); returns the port.

    Worker processes sharing one gRPC port pass their index as offset: worker i serves on port + i.
    An empty address turns the endpoint off and returns 0. restarts: the service's restarts so far.
    """
    PROCESS_RESTARTS.set(restarts)
    if not address:
        return 0
    host, _, port = address.rpartition(":")
    number = int(port) + offset if int(port) else 0
    server, _thread = start_http_server(number, addr=host or "0.0.0.0")
    bound = int(server.server_port)
    log.info("metrics endpoint", extra={"address": f"{host}:{bound}", "path": "/metrics"})
    return bound


def status_name(context: grpc.aio.ServicerContext) -> str:
    code: Any = context.code()
    if code is None:
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return code.name
    for status in grpc.StatusCode:  # grpc.aio reports the code as its integer value
        if status.value[0] == code:
            return status.name
    return "UNKNOWN"


class _MethodMetrics:
    """The metric children of one method, looked up once (labels() per call costs more than observing)."""

    def __init__(self, service: str, method: str) -> None:
        self._labels = (service, method)
        self._seconds = RPC_SECONDS.labels(service, method)
        self._handled: dict[str, Any] = {}

    def observe(self, code: str, started: float) -> None:
        self._seconds.observe(time.perf_counter() - started)
        handled = self._handled.get(code)
        if handled is None:
            handled = self._handled[code] = RPC_HANDLED.labels(*self._labels, code)
        handled.inc()


def _split(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def measure_rpcs(full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """Handler wrapper (handler_wrappers.py) that counts every unary and server-streaming RPC by
    status code and observes its duration; client- and bidi-streaming calls (reflection) are not
    measured."""
    metrics = _MethodMetrics(*_split(full_method))
    if handler.unary_unary is not None:
        return with_behavior(handler, _measured_unary(handler.unary_unary, metrics))
    if handler.unary_stream is not None:
        return with_behavior(handler, _measured_stream(handler.unary_stream, metrics))
    return handler


def _measured_unary(behavior: Any, metrics: _MethodMetrics) -> Any:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        code = "UNKNOWN"
        try:
            response = await behavior(request, context)
            code = status_name(context)
            return response
        except grpc.aio.AbortError:
            code = status_name(context)
            raise
        finally:
            metrics.observe(code, started)

    return wrapper


def _measured_stream(behavior: Any, metrics: _MethodMetrics) -> Any:
    if not inspect.isasyncgenfunction(behavior):
        # A handler that sends with context.write() (the health Watch) is a plain coroutine.
        return _measured_unary(behavior, metrics)

    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        started = time.perf_counter()
        code = "CANCELLED"  # a stream the client leaves ends by cancellation
        try:
            async for response in behavior(request, context):
                yield response
            code = status_name(context)
        except grpc.aio.AbortError:
            code = status_name(context)
            raise
        finally:
            metrics.observe(code, started)

    return wrapper
