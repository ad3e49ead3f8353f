"""A SERVER span around every HTTP request an ASGI app answers (the gateway), continuing the
caller's trace from its ``traceparent`` header. Wraps the whole app, only when tracing is on; the
span is named by the route that answered (``POST /v1/models/{model}:predict``), which the router
leaves in the scope, or by ``route_of`` where that is a catch-all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode

Scope = dict[str, Any]
PROPAGATED = {b"traceparent", b"tracestate", b"baggage"}


class TracingMiddleware:
    def __init__(self, app: Any, tracer: trace.Tracer, route_of: Callable[[str, str], str | None] | None = None) -> None:
        self.app = app
        self._tracer = tracer
        self._route_of = route_of

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in PROPAGATED}
        method = scope["method"]
        attributes = {"http.request.method": method, "url.path": scope["path"]}
        with self._tracer.start_as_current_span(
            method, context=propagate.extract(carrier), kind=trace.SpanKind.SERVER, attributes=attributes,
        ) as span:

            async def send_status(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR, str(status)))
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                route = self._route_of(method, scope["path"]) if self._route_of is not None else None
                route = route or getattr(scope.get("route"), "path", None)  # set by the router that matched
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
