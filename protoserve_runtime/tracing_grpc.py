"""A SERVER span around every gRPC call a service answers, continuing the caller's trace from the
``traceparent`` in its metadata. A handler wrapper (handler_wrappers.py), added only when tracing
is on; health checks and reflection are left untraced (load balancers poll them all the time)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode

from protoserve_runtime.handler_wrappers import HandlerWrapper, behavior_of, with_behavior
from protoserve_runtime.metrics import status_name

UNTRACED = ("/grpc.health.v1.", "/grpc.reflection.")
PROPAGATED = ("traceparent", "tracestate", "baggage")
# Codes that are the server's fault (OpenTelemetry's gRPC conventions); the others are the caller's.
SERVER_ERRORS = {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}


def _carrier(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {key: value for key, value in (context.invocation_metadata() or ()) if key in PROPAGATED and isinstance(value, str)}


def server_spans(tracer: trace.Tracer) -> HandlerWrapper:
    def wrap(full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if full_method.startswith(UNTRACED):
            return handler
        name = full_method.lstrip("/")
        service, _, method = name.partition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        inner = behavior_of(handler)

        @contextlib.contextmanager
        def traced(context: grpc.aio.ServicerContext) -> Iterator[None]:
            """The call's span: its status from the call's code, or from what escaped the handler."""
            with tracer.start_as_current_span(
                name, context=propagate.extract(_carrier(context)), kind=trace.SpanKind.SERVER, attributes=attributes,
                record_exception=False, set_status_on_exception=False,
            ) as span:
                try:
                    yield
                except grpc.aio.AbortError:  # the handler answered with a status: the context has it
                    finish(span, context)
                    raise
                except BaseException as exc:
                    failed(span, exc)
                    raise
                finish(span, context)

        def finish(span: trace.Span, context: grpc.aio.ServicerContext) -> None:
            code = status_name(context)
            span.set_attribute("rpc.grpc.status_code", code)
            if code in SERVER_ERRORS:
                span.set_status(Status(StatusCode.ERROR, code))

        def failed(span: trace.Span, exc: BaseException) -> None:
            if isinstance(exc, Exception):  # a cancelled call (the client left) is not the server's error
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("rpc.grpc.status_code", "UNKNOWN" if isinstance(exc, Exception) else "CANCELLED")

        if inspect.isasyncgenfunction(inner):
            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with traced(context):
                    async for item in inner(request, context):
                        yield item

            return with_behavior(handler, stream)

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with traced(context):
                result = inner(request, context)
                return await result if inspect.isawaitable(result) else result

        return with_behavior(handler, call)

    return wrap
