"""The OpenTelemetry SDK as protoserve sets it up: a tracer provider per process, its exporter, and
trace and span ids on log lines. Imported only when tracing is on (``tracing.start``)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from protoserve_runtime.handler_wrappers import HandlerWrapper

log = logging.getLogger(__name__)


class JsonLinesExporter(SpanExporter):
    """Appends each finished span as one JSON line to a file that several processes may share
    (one ``write`` per span on a file opened for appending, so lines never interleave)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(json.dumps(span_record(span), default=str) + "\n" for span in spans)
        with self._lock, open(self._path, "a", encoding="utf-8") as out:
            out.write(text)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as plain JSON: ids in hex as in traceparent, the process that recorded it."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
        "parent_span_id": trace.format_span_id(span.parent.span_id) if span.parent else None,
        "service": span.resource.attributes.get("service.name"),
        "pid": span.resource.attributes.get("process.pid"),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
        "links": [{"trace_id": trace.format_trace_id(link.context.trace_id),
                   "span_id": trace.format_span_id(link.context.span_id)} for link in span.links],
    }


def _processor(exporter: str, traces_file: Path | None) -> Any:
    if exporter == "file":
        assert traces_file is not None
        return SimpleSpanProcessor(JsonLinesExporter(traces_file))  # written as it ends: nothing lost on a kill
    if exporter == "console":
        return SimpleSpanProcessor(ConsoleSpanExporter())
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return BatchSpanProcessor(OTLPSpanExporter())  # OTEL_EXPORTER_OTLP_* configure it


def _log_record_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Records made while a span is active carry its ids (both log formats print extra fields)."""

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        return record

    return make


class Tracing:
    """Tracing in this process: the tracer, W3C propagation, the wrappers a service's adapters use."""

    def __init__(self, provider: TracerProvider, service: str) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer(f"protoserve.{service}")

    def traceparent(self) -> str:
        """The active span's W3C traceparent ('' when none), to store with work done later (a job)."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier.get("traceparent", "")

    def context_of(self, traceparent: str) -> trace.SpanContext | None:
        """The span context a stored traceparent names (None when it names none)."""
        if not traceparent:
            return None
        context = trace.get_current_span(propagate.extract({"traceparent": traceparent})).get_span_context()
        return context if context.is_valid else None

    @contextmanager
    def client_span(self, method: str) -> Iterator[list[tuple[str, str]]]:
        """A CLIENT span around a gRPC call of ``/package.Service/Method``; yields the metadata
        (traceparent, tracestate) that carries it to the server."""
        service, _, name = method.lstrip("/").partition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        with self.tracer.start_as_current_span(method.lstrip("/"), kind=trace.SpanKind.CLIENT, attributes=attributes):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            yield list(carrier.items())

    def grpc_wrappers(self) -> list[HandlerWrapper]:
        from protoserve_runtime.tracing_grpc import server_spans

        return [server_spans(self.tracer)]

    def asgi(self, app: Any, route_of: Callable[[str, str], str | None] | None = None) -> Any:
        """app wrapped in a SERVER span per HTTP request; route_of(method, path) names a request's
        route where the app's router has only a catch-all."""
        from protoserve_runtime.tracing_asgi import TracingMiddleware

        return TracingMiddleware(app, self.tracer, route_of)

    def shutdown(self) -> None:
        """Export what is left; call before the process exits (spawned workers skip atexit)."""
        self.provider.shutdown()


def start(service: str, exporter: str, traces_file: Path | None = None) -> Tracing:
    attributes: dict[str, Any] = {"process.pid": os.getpid()}
    if not os.environ.get("OTEL_SERVICE_NAME"):  # OTEL_SERVICE_NAME (read by the SDK) wins when set
        attributes["service.name"] = f"protoserve-{service}"
    provider = TracerProvider(resource=Resource.create(attributes))  # OTEL_TRACES_SAMPLER is read here
    provider.add_span_processor(_processor(exporter, traces_file))
    trace.set_tracer_provider(provider)
    logging.setLogRecordFactory(_log_record_factory(logging.getLogRecordFactory()))
    log.info("tracing on", extra={"exporter": exporter, "service_name": provider.resource.attributes.get("service.name")})
    return Tracing(provider, service)
