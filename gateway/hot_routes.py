"""Dispatch of the hot REST calls without Starlette's walk over every route.

Starlette tries its routes in order until one matches; the two calls that carry the load (``POST
/v1/models/{model}:predict`` and ``POST /v2/models/{name}[/versions/{v}]/infer``) come late in that
list. ``HotRouter`` sends a POST whose path fits a hot route's guard straight to that route, doing
what Starlette's router does on a match (the same scope keys, the same ``handle``); everything
else takes Starlette's walk unchanged. Middleware (CORS, error handlers) wraps the router, so it is
unchanged too. A guard must only fit paths that no earlier route matches
(tests/gateway/test_hot_routes.py checks this against the walk).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Router
from starlette.types import Receive, Scope, Send


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
