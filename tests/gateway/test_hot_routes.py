"""The hot-route shortcut picks what Starlette's walk over the routes picks, and the cheap request
helpers of the REST dispatcher answer what Starlette's URL and query parsing answer."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

from starlette.requests import Request

from gateway.rest import query_items, url_path
from tests.harness import REPO_ROOT

PATHS = [
    "/v1/models/iris-knn:predict", "/v1/models/a%20b:predict", "/v1/models/é:predict", "/v1/models/:predict",
    "/v1/models/a/b:predict", "/v1/models/x:predict/", "/v1/models/x:predictx", "/v1/models/x:explain",
    "/v1/models/x:predict\n", "//v1/models/x:predict", "/v1/models/x?y:predict", "/v1/models/iris-knn",
    "/v2/models/iris-knn/infer", "/v2/models/iris-knn/versions/2/infer", "/v2/models/iris-knn/versions/infer",
    "/v2/models/versions/versions/infer", "/v2/models//infer", "/v2/models/a/b/infer", "/v2/models/a/infer/",
    "/v2/models/a/ready", "/v2/models/a", "/v2/repository/models/a/load", "/static/app.js", "/", "/healthz",
    "/v1/jobs/j/results", "/v1/jobs", "",
]
# In a child process: the app imports the service's v2 messages, which cannot share a process with
# tritonclient.grpc (tests/gateway/test_auth.py uses it).
CHECK = """
import json, sys
from starlette.routing import Match
from gateway.app import create_app
from gateway.settings import GatewaySettings
from protoserve_runtime.auth import Authenticator
from protoserve_runtime.settings import from_env
router = create_app(from_env(GatewaySettings), Authenticator(None)).router
picked, mismatches = 0, []
for path, method, root_path, kind in json.loads(sys.stdin.read()):
    scope = {"type": kind, "method": method, "path": path, "root_path": root_path, "headers": [], "query_string": b""}
    walked = None
    for route in router.routes:  # what Router.app does: the first full match
        match, child = route.matches(scope)
        if match is Match.FULL:
            walked = (route, child)
            break
    hot = router.pick(scope)
    picked += hot is not None
    if hot is not None and hot != walked:
        mismatches.append([path, method, root_path, repr(hot), repr(walked)])
print(json.dumps({"picked": picked, "mismatches": mismatches}))
"""


def test_hot_routes_pick_what_the_walk_picks() -> None:
    cases = [[p, m, r, k] for p, m, r, k in itertools.product(PATHS, ["POST", "GET", "PUT", "OPTIONS"], ["", "/api"],
                                                              ["http"])]
    cases += [["/v1/models/iris-knn:predict", "POST", "", "websocket"]]
    done = subprocess.run([sys.executable, "-c", CHECK], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=120, cwd=REPO_ROOT, check=True)
    result = json.loads(done.stdout)
    assert result["mismatches"] == []
    assert result["picked"] >= 6  # predict (several names), both infer routes: the shortcut is really taken


def _request(path: str, headers: list[tuple[bytes, bytes]], server: tuple[str, int] | None, query: bytes = b"") -> Request:
    scope = {"type": "http", "method": "POST", "path": path, "root_path": "", "headers": headers, "query_string": query,
             "scheme": "http"}
    if server is not None:
        scope["server"] = server
    return Request(scope)


def test_url_path_is_what_starlette_url_gives() -> None:
    paths = PATHS + ["/a#b", "/a\\b", "/a\tb", "/a\rb", " /a", "a:b", "http://x/y", "/a b", "/a;b", "/%2F", "/a/./b",
                     "/a/../b", "/\x00", "/\x7f", "/a@b", "/[::1]", "/a?b#c"]
    hosts = [[], [(b"host", b"example.com")], [(b"host", b"example.com:8080")], [(b"host", b"ex/am?ple")],
             [(b"host", b"[::1]:80")], [(b"host", b"a@b")], [(b"host", b"")], [(b"host", b"x:notaport")]]
    for path, headers, server in itertools.product(paths, hosts, [None, ("127.0.0.1", 8080), ("::1", 80)]):
        request = _request(path, headers, server)
        assert url_path(request) == request.url.path, (path, headers, server)


def test_query_items_are_starlettes() -> None:
    for query in [b"", b"a=1", b"a=1&a=2&b", b"version=2&skip_cache=true", b"%20=%20", b"&&", b"="]:
        request = _request("/v1/models", [], None, query)
        assert query_items(request) == list(request.query_params.multi_items())


# In a child process (as above): each request through HotApp (the handler called directly when there
# is no Origin header) and through the full Starlette stack; the answers must be the same bytes.
SAME_ANSWERS = """
import asyncio, json, os, re, sys
from starlette.applications import Starlette
from gateway.app import create_app
from gateway.settings import GatewaySettings
from protoserve_runtime.auth import Authenticator
from protoserve_runtime.settings import from_env

app = create_app(from_env(GatewaySettings), Authenticator(None))

async def serve(call, case):
    method, path, headers, body = case
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http", "method": method,
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(k.encode(), v.encode()) for k, v in headers], "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 5000)}
    chunks = [body.encode()[i:i + 7] for i in range(0, len(body), 7)] or [b""]
    async def receive():
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)} if chunks else \\
            {"type": "http.disconnect"}
    sent = []
    async def send(message):
        sent.append(message)
    try:
        await call(scope, receive, send)
    except Exception as exc:  # the full stack re-raises after answering 500; so must the hot one
        sent.append({"type": "raised", "error": repr(exc)})
    out = []
    for m in sent:
        if m["type"] == "http.response.start":
            headers = [[k.decode(), v.decode()] for k, v in m.get("headers", []) if k != b"content-length"]
            out.append([m["status"], headers])
        elif m["type"] == "http.response.body":
            out.append(re.sub(r'"prediction_id":"[^"]*"', '"prediction_id":""', m.get("body", b"").decode()))
        else:
            out.append(m)
    return out

async def main():
    async with app.router.lifespan_context(app):
        full = lambda scope, receive, send: Starlette.__call__(app, scope, receive, send)
        results = []
        for case in json.loads(sys.stdin.read()):
            results.append([case, await serve(app, case), await serve(full, case)])
        print(json.dumps({"shortcut": app.shortcut, "results": results}))

asyncio.run(main())
"""

JSON = [("content-type", "application/json")]
ROW = '{"rows": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'
TENSOR = '{"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}'
ANSWER_CASES = [
    ("POST", "/v1/models/iris-knn:predict", JSON, ROW),
    ("POST", "/v1/models/iris-knn:predict", JSON + [("origin", "http://allowed.example")], ROW),
    ("POST", "/v1/models/iris-knn:predict", JSON, '{"rows": [{"sepal_length": "x"}]}'),
    ("POST", "/v1/models/iris-knn:predict", JSON, '{"rows": [{}], "bogus": 1}'),
    ("POST", "/v1/models/iris-knn:predict", JSON, '{"rows": '),
    ("POST", "/v1/models/iris-knn:predict", [("content-type", "text/plain")], ROW),
    ("POST", "/v1/models/iris-knn:predict", JSON + [("content-length", "99999999")], ROW),
    ("POST", "/v1/models/iris-knn:predict", JSON + [("authorization", "Bearer \u00e9")], ROW),
    ("POST", "/v1/models/no-such-model:predict", JSON, ROW),
    ("POST", "/v1/models/iris-knn:predict", JSON, '{"rows": [' + ",".join(['{"sepal_length": 1}'] * 3) + "]}"),
    ("POST", "/v2/models/iris-knn/infer", JSON, TENSOR),
    ("POST", "/v2/models/iris-knn/versions/1/infer", JSON, TENSOR),
    ("POST", "/v2/models/iris-knn/versions/99/infer", JSON, TENSOR),
    ("POST", "/v2/models/no-such-model/infer", JSON, TENSOR),
    ("POST", "/v2/models/iris-knn/infer", JSON, '{"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4]}]}'),
    ("POST", "/v2/models/iris-knn/infer", [("content-type", "text/csv")], TENSOR),
    ("POST", "/v2/models/iris-knn/infer", JSON + [("inference-header-content-length", "x")], TENSOR),
    ("POST", "/v2/models/iris-knn/infer", JSON, "[1, 2]"),
    ("POST", "/v2/models/iris-knn/infer", JSON, "{\"inputs\": [{\"name\": \"input\", \"datatype\": \"FP64\", "
                                                 "\"shape\": [1, 4], \"data\": [1, 2, 3, 4]}], "
                                                 "\"outputs\": [{\"name\": \"predict_proba\", \"parameters\": "
                                                 "{\"binary_data\": true}}]}"),
    ("GET", "/v1/models", [], ""),
]


def test_hot_calls_answer_as_the_full_stack(inference_address: str) -> None:
    env = {**os.environ, "PROTOSERVE_INFERENCE_REPLICAS": inference_address, "PROTOSERVE_MAX_BODY_BYTES": "4096",
           "PROTOSERVE_CORS_ORIGINS": "http://allowed.example", "PROTOSERVE_LOG_LEVEL": "critical"}
    done = subprocess.run([sys.executable, "-c", SAME_ANSWERS], input=json.dumps(ANSWER_CASES), capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT, env=env, check=True)
    answer = json.loads(done.stdout)
    assert answer["shortcut"]  # otherwise both sides took the full stack
    statuses = set()
    for case, hot, full in answer["results"]:
        assert hot == full, case
        statuses.add(hot[0][0])
    assert {200, 400, 404, 413, 415, 422} <= statuses  # successes and every kind of refusal were compared
