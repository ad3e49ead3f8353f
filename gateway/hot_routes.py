"""Dispatch of the hot REST calls without Starlette's walk over every route and its middleware layers.

Starlette tries its routes in order until one matches; the two calls that carry the load (``POST
/v1/models/{model}:predict`` and ``POST /v2/models/{name}[/versions/{v}]/infer``) come late in that
list. ``HotRouter`` sends a POST whose path fits a hot route's guard straight to that route, doing
what Starlette's router does on a match (the same scope keys, the same ``handle``); everything
else takes Starlette's walk unchanged. A guard must only fit paths that no earlier route matches
(tests/gateway/test_hot_routes.py checks this against the walk).

``HotApp`` goes one step further for the usual case, a hot call from a client that sends no
``Origin`` (curl, SDKs, load generators): it calls the handler itself, skipping the middleware
layers, whose whole effect on a successful call without ``Origin`` is CORS's ``Vary: Origin``
header, added here the same way. When the handler raises, the error is not answered here: the
request goes through the full stack, where ``HotRouter`` raises the same exception at the point
the handler would have, so every error answer (400/401/403/413/415/422, the gRPC status table,
500) comes from the very same code. Calls with an ``Origin`` take the full stack.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route, Router, request_response
from starlette.types import Message, Receive, Scope, Send

REPLAY = "gateway.hot_error"  # scope key: the exception a hot handler raised, to raise again in the full stack


async def _raise_replayed(request: Request) -> Any:
    raise request.scope.pop(REPLAY)


_replay = request_response(_raise_replayed)


class HotRouter(Router):
    def __init__(self, routes: Sequence[BaseRoute], hot: Sequence[tuple[re.Pattern[str], BaseRoute]], **options: Any) -> None:
        super().__init__(list(routes), **options)
        assert all(route in self.routes for _, route in hot)
        self.hot = list(hot)

    def pick(self, scope: Scope) -> tuple[BaseRoute, Scope] | None:
        """The hot route of this request and the scope keys its match sets; None to walk the routes."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        path = scope["path"]
        for guard, route in self.hot:
            if guard.fullmatch(path):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    return route, child_scope
        return None

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if REPLAY in scope:  # HotApp's handler call raised: raise it where the route's handler would
            await _replay(scope, receive, send)
            return
        picked = self.pick(scope)
        if picked is None:
            await super().app(scope, receive, send)
            return
        route, child_scope = picked
        if "router" not in scope:  # as Router.app does before it walks
            scope["router"] = self
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)


def _has_origin(scope: Scope) -> bool:
    return any(key == b"origin" for key, _ in scope["headers"])


async def _vary_origin(message: Message, send: Send) -> None:
    # What CORSMiddleware.send does to a response when the request had no Origin header.
    if message["type"] == "http.response.start":
        message.setdefault("headers", [])
        headers = MutableHeaders(scope=message)
        headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
    await send(message)


class HotApp(Starlette):
    """The gateway's Starlette app: errors -> CORS -> exceptions -> HotRouter, with the shortcut above."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # The shortcut stands for exactly this stack; any other middleware would be skipped, so it turns the shortcut off.
        self.shortcut = [m.cls for m in self.user_middleware] == [CORSMiddleware] and self.max_body_size is None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        router = self.router
        picked = None
        if self.shortcut and isinstance(router, HotRouter) and REPLAY not in scope:
            picked = router.pick(scope)
        if picked is None or _has_origin(scope):
            await super().__call__(scope, receive, send)
            return
        route, child_scope = picked
        assert isinstance(route, Route)
        scope["app"] = self
        scope["router"] = router
        scope["route"] = route
        scope.update(child_scope)
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            scope[REPLAY] = exc
            await super().__call__(scope, receive, send)
            return
        try:
            await response(scope, receive, lambda message: _vary_origin(message, send))
        except Exception as exc:
            # As the error middleware does once a response has started: its handler logs, the error goes on.
            await self.exception_handlers[Exception](Request(scope), exc)
            raise
