"""The REST routes derived from the protos: one dispatcher over every annotated RPC."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from gateway.calls import Caller, read_body, require_json
from gateway.discovery import Route
from gateway.errors import HttpError
from gateway.jobs_rest import accepted
from gateway.transcode import JsonResponse, build_request, parse_json, to_json


class RestApi:
    def __init__(self, routes: Sequence[Route], caller: Caller, max_body_bytes: int) -> None:
        self.routes = list(routes)
        self.caller = caller
        self.max_body_bytes = max_body_bytes

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

    async def handle(self, request: Request) -> Response:
        route, values = self.match(request.method, request.url.path)
        metadata = self.caller.authorize(request, route.full_method)  # refuse before reading the body
        raw = await read_body(request, self.max_body_bytes)
        body = None
        if route.body:
            require_json(request, raw)
            body = parse_json(raw)
        elif raw.strip():
            raise HttpError.bad_request(f"{route.http_method} {route.template} takes no body")
        message = build_request(route, values, list(request.query_params.multi_items()), body)
        response = await self.caller.call(request, route.full_method, message, route.response_class.FromString,
                                          route.idempotent, metadata)
        answer = to_json(response)
        headers = accepted(route.full_method, answer)
        if headers is not None:
            return JsonResponse(answer, status_code=202, headers=headers)
        return JsonResponse(answer)
