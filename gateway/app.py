"""The gateway's ASGI app: REST routes from the protos, Open Inference Protocol REST, docs, web page."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway import __version__, discovery
from gateway.calls import Caller, TracedCaller
from gateway.docs_page import OIP_HTML, render_docs
from gateway.errors import HttpError
from gateway.examples import ModelExamples
from gateway.hot_routes import HotApp, HotRouter
from gateway.jobs_rest import JobResults
from gateway.oip import OipApi, error_response
from gateway.openapi import build_openapi, with_model_examples
from gateway.rest import RestApi
from gateway.settings import GatewaySettings
from gateway.upstream import UpstreamPool, Upstreams
from protoserve_runtime.auth import Authenticator

if TYPE_CHECKING:
    from protoserve_runtime.tracing_sdk import Tracing

log = logging.getLogger(__name__)
WEB = Path(__file__).resolve().parent / "web"
PREDICT = "/protoserve.inference.v1.InferenceService/Predict"


def build_upstreams(settings: GatewaySettings) -> Upstreams:
    def pool(addresses: Sequence[str]) -> UpstreamPool:
        return UpstreamPool(addresses, max_message_bytes=settings.server.max_message_bytes, retries=settings.retries,
                            health_interval=settings.health_interval_seconds)

    return Upstreams(pool(settings.replicas), {name: pool(a) for name, a in settings.upstream_map().items()})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    if request.url.path.startswith("/v2"):
        return error_response(exc)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


async def _starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "UNIMPLEMENTED"}.get(exc.status_code, "INVALID_ARGUMENT")
    return await _http_error(request, HttpError(exc.status_code, code, str(exc.detail)))


async def _bug(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return await _http_error(request, HttpError(500, "INTERNAL", "internal error; see the gateway log"))


def create_app(
    settings: GatewaySettings, auth: Authenticator, routes: Sequence[discovery.Route] | None = None,
    tracing: Tracing | None = None,
) -> Starlette:
    """tracing: when on, the app is wrapped in a server span per request and every upstream call is
    a client span carrying the trace."""
    routes = discovery.discover_routes() if routes is None else routes
    upstreams = build_upstreams(settings)
    caller = (Caller(upstreams, auth, settings.deadline_seconds) if tracing is None
              else TracedCaller(upstreams, auth, settings.deadline_seconds, tracing))
    rest = RestApi(routes, caller, settings.max_body_bytes)
    oip = OipApi(caller, settings.max_body_bytes)
    job_results = JobResults(caller)
    spec = build_openapi(routes)
    examples = ModelExamples(caller)
    docs = render_docs(spec, OIP_HTML)

    async def healthz(request: Request) -> Response:
        pools = {r.address: r.healthy for pool in upstreams.pools() for r in pool.replicas}
        return JSONResponse({"status": "ok", "version": __version__, "auth": auth.enabled, "replicas": pools})

    async def openapi(request: Request) -> Response:
        return JSONResponse(with_model_examples(spec, await examples.rows(request)))

    async def docs_page(request: Request) -> Response:
        return HTMLResponse(docs)

    async def config(request: Request) -> Response:
        return JSONResponse({"auth": auth.enabled})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        upstreams.start()
        yield
        await upstreams.close()
        if tracing is not None:
            tracing.shutdown()  # worker processes skip atexit: export what is left now

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    cors = Middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_credentials=settings.cors_credentials,
        allow_methods=methods,
        allow_headers=["authorization", "content-type", "inference-header-content-length"],
        expose_headers=["inference-header-content-length"],
        max_age=600,
    )
    oip_routes = oip.routes()
    rest_route = Route("/{path:path}", rest.handle, methods=methods)
    http_routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
        Route("/config.json", config, methods=["GET"]),
        *oip_routes,
        *job_results.routes(),
        Mount("/static", StaticFiles(directory=WEB), name="static"),
        Route("/", lambda request: HTMLResponse((WEB / "index.html").read_text(encoding="utf-8")), methods=["GET"]),
        rest_route,
    ]
    # The calls that carry the load skip the walk over the routes above and, without an Origin header,
    # the middleware layers (same route, same handling, same answers: see gateway/hot_routes.py).
    hot = [*((p, rest_route) for p in rest.post_patterns(PREDICT)),
           *((r.path_regex, r) for r in oip_routes if r.endpoint == oip.infer)]
    app = HotApp(
        middleware=[cors],
        exception_handlers={HttpError: _http_error, HTTPException: _starlette_error, Exception: _bug},
    )
    app.router = HotRouter(http_routes, hot, lifespan=lifespan)
    if tracing is not None:
        return tracing.asgi(app, rest.template)  # type: ignore[no-any-return]
    return app
