"""The REST routes derived from the protos: one dispatcher over every annotated RPC."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from gateway.calls import Caller, read_body, require_json
from gateway.discovery import Route
from gateway.errors import HttpError
from gateway.jobs_rest import accepted
from gateway.transcode import JsonResponse, build_request, parse_json, to_json

# Characters after which request.url.path is no longer the raw path (escaped, stripped or split at).
_URL_SPECIAL = re.compile(r"[?#\\\t\r\n]")


def url_path(request: Request) -> str:
    """request.url.path without building the URL when the path is plain (the usual case): a plain path
    starting with one slash comes back from Starlette's URL unchanged, whatever the Host header."""
    path: str = request.scope["path"]
    if path[:1] == "/" and path[1:2] != "/" and not _URL_SPECIAL.search(path):
        return path
    return request.url.path


def query_items(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items()) if request.scope.get("query_string") else []


class RestApi:
    def __init__(self, routes: Sequence[Route], caller: Caller, max_body_bytes: int) -> None:
        self.routes = list(routes)
        self.caller = caller
        self.max_body_bytes = max_body_bytes

    def post_patterns(self, full_method: str) -> list[re.Pattern[str]]:
        """The path patterns of an RPC's POST bindings."""
        return [r.pattern for r in self.routes if r.full_method == full_method and r.http_method == "POST"]

    def match(self, method: str, path: str) -> tuple[Route, list[str]]:
        allowed = []
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.http_method == method:
                return route, [unquote(v) for v in found.groups()]
            allowed.append(route.http_method)
        if allowed:
            raise HttpError(405, "UNIMPLEMENTED", f"{method} is not allowed here; use {', '.join(sorted(set(allowed)))}")
        raise HttpError(404, "NOT_FOUND", f"no route for {method} {path}")

    def template(self, method: str, path: str) -> str | None:
        """The template of the route a request goes to (``/v1/models/{model}:predict``), to name its
        trace span by; None when none matches."""
        for route in self.routes:
            if route.http_method == method and route.pattern.match(path):
                return route.template
        return None

    async def handle(self, request: Request) -> Response:
        route, values = self.match(request.method, url_path(request))
        metadata = self.caller.authorize(request, route.full_method)  # refuse before reading the body
        raw = await read_body(request, self.max_body_bytes)
        body = None
        if route.body:
            require_json(request, raw)
            body = parse_json(raw)
        elif raw.strip():
            raise HttpError.bad_request(f"{route.http_method} {route.template} takes no body")
        message = build_request(route, values, query_items(request), body)
        response = await self.caller.call(request, route.full_method, message, route.response_class.FromString,
                                          route.idempotent, metadata)
        answer = to_json(response)
        headers = accepted(route.full_method, answer)
        if headers is not None:
            return JsonResponse(answer, status_code=202, headers=headers)
        return JsonResponse(answer)
