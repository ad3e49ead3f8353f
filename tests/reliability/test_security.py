"""Security: every RPC each service serves (found by reflection) and every gateway route (found from
the app's routes and the OpenAPI document) against the auth matrix; keys never logged; model files
from outside never unpickled; path traversal in model names and versions refused."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from gateway.discovery import discover_routes
from protoserve_runtime import health
from protoserve_runtime.auth import ADMIN, OPEN, SCOPES, scope_for
from tests.conftest import start_inference
from tests.harness import REPO_ROOT
from tests.reliability.system import HAS_MONITORING, System

GRPC_SERVICES = ["inference-0", "explain", *(["monitoring"] if HAS_MONITORING else [])]
MISSING = "no-such-model"  # path parameters: an allowed call answers 404, and nothing served is changed
# Gateway routes that are not transcoded RPCs, by endpoint name, and the scope each needs.
# A new route fails test_every_gateway_route_is_in_the_matrix until it is given one here.
NAMED_ROUTE_SCOPES = {
    "healthz": OPEN, "openapi": OPEN, "docs_page": OPEN, "config": OPEN, "<lambda>": OPEN, "live": OPEN,
    "ready": OPEN, "server_metadata": "predict", "model_metadata": "predict", "model_ready": "predict",
    "infer": "predict", "repository_index": "predict", "load": ADMIN, "unload": ADMIN,
    "download": "predict",  # a job's results as CSV or JSON lines (gateway/jobs_rest.py)
}
ROUTE_LISTING = """
import json
from gateway.app import create_app
from gateway.settings import GatewaySettings
from protoserve_runtime.auth import Authenticator
from protoserve_runtime.settings import from_env
app = create_app(from_env(GatewaySettings), Authenticator(None))
print(json.dumps([[r.path, sorted(r.methods or []), r.endpoint.__name__] for r in app.routes if hasattr(r, "endpoint")]))
"""


def gateway_routes() -> list[tuple[str, str, str]]:
    """(HTTP method, path, scope) for every route of the gateway; RPC routes get their RPC's scope.

    Listed in a child process: the app imports the service's v2 messages, which cannot share a
    process with tritonclient.grpc (used by other tests)."""
    listed = subprocess.run([sys.executable, "-c", ROUTE_LISTING], capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT, check=True)
    calls = []
    for path, methods, endpoint in json.loads(listed.stdout):
        if endpoint == "handle":  # the transcoded RPCs: one entry per annotated RPC below
            continue
        for method in set(methods) - {"HEAD"}:
            calls.append((method, path.replace("{name}", MISSING).replace("{version}", "1"),
                          NAMED_ROUTE_SCOPES.get(endpoint, "unknown route: give it a scope")))
    for route in discover_routes():
        path = route.openapi_path.replace("{model}", MISSING).replace("{version}", "1")
        calls.append((route.http_method, path, scope_for(route.full_method)))
    return calls


def test_every_gateway_route_is_in_the_matrix() -> None:
    routes = gateway_routes()
    assert all(scope in (*SCOPES, OPEN) for _, _, scope in routes), routes
    assert len(routes) >= 15


def test_rest_auth_matrix_on_every_route(system: System) -> None:
    wrong = "ps_00000000_" + "x" * 43
    with httpx.Client(base_url=system.gateway_url, timeout=30) as client:
        for method, path, scope in gateway_routes():
            def status(headers: dict[str, str], method: str = method, path: str = path) -> int:
                body = {} if method == "POST" else None
                return client.request(method, path, json=body, headers=headers).status_code

            where = (method, path, scope)
            if scope == OPEN:
                assert status({}) not in (401, 403), where
                continue
            assert status({}) == 401, where
            assert status({"authorization": f"Bearer {wrong}"}) == 401, where
            assert status({"authorization": f"Basic {system.keys['predict']}"}) == 401, where
            for key_scope in SCOPES:
                code = status(system.bearer(key_scope))
                assert code < 500, (where, key_scope, code)
                if key_scope in (scope, ADMIN):
                    assert code not in (401, 403), (where, key_scope, code)
                else:
                    assert code == 403, (where, key_scope, code)


def served_methods(address: str) -> list[tuple[str, bool]]:
    """(full method, server streaming) of every RPC the server lists by reflection."""
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        out = []
        for name in database.get_services():
            for method in pool.FindServiceByName(name).methods:
                out.append((f"/{name}/{method.name}", method.server_streaming))
        return out


def call(channel: grpc.Channel, method: str, streaming: bool, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    identity = lambda b: b  # noqa: E731  (an empty message is a valid request of every type)
    try:
        if streaming:
            for _ in channel.unary_stream(method, request_serializer=identity, response_deserializer=identity)(
                    b"", metadata=metadata, timeout=3):
                break
        else:
            channel.unary_unary(method, request_serializer=identity, response_deserializer=identity)(
                b"", metadata=metadata, timeout=30)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


@pytest.mark.parametrize("name", GRPC_SERVICES)
def test_grpc_auth_matrix_on_every_rpc(system: System, name: str) -> None:
    address = system.address(name)
    methods = [(m, s) for m, s in served_methods(address) if "ServerReflection" not in m]  # bidi; open
    assert len(methods) >= 2
    denied = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
    with grpc.insecure_channel(address) as channel:
        for method, streaming in methods:
            scope = scope_for(method)
            if scope == OPEN:
                assert call(channel, method, streaming, ()) not in denied, method
                continue
            assert call(channel, method, streaming, ()) == grpc.StatusCode.UNAUTHENTICATED, method
            assert call(channel, method, streaming, (("authorization", "Bearer ps_0_wrong"),)) == \
                grpc.StatusCode.UNAUTHENTICATED, method
            for key_scope in SCOPES:
                if key_scope == ADMIN and method.endswith(("ModelLoad", "ModelUnload")):
                    continue  # allowed, and an empty name is refused; not called so nothing is unloaded
                code = call(channel, method, streaming, system.metadata(key_scope))
                assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (method, key_scope, code)
                if key_scope in (scope, ADMIN):
                    assert code not in denied, (method, key_scope, code)
                else:
                    assert code == grpc.StatusCode.PERMISSION_DENIED, (method, key_scope, code)


def test_keys_never_appear_in_any_log(system: System) -> None:
    with httpx.Client(base_url=system.gateway_url, timeout=30) as client:
        for key in system.keys.values():
            client.get("/v1/models", headers={"authorization": f"Bearer {key}"})
            client.get("/v1/models", headers={"authorization": f"Bearer {key}x"})  # a wrong key near a real one
    logs = system.logs()
    assert len(logs) > 1000  # the services did log
    for key in system.keys.values():
        secret = key.split("_", 2)[2]  # ps_<id>_<secret>; the secret itself may hold "_"
        assert key not in logs and secret not in logs


class _Trap:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_model_files_are_never_unpickled(model_repository: Path, tmp_path: Path) -> None:
    """A pickle dressed as a model, and a skops file holding an untrusted callable, are refused;
    the code in the pickle never runs and the trusted model beside them is served."""
    import skops.io as sio

    repository = tmp_path / "models"
    shutil.copytree(model_repository / "iris-knn", repository / "iris-knn")
    marker = tmp_path / "pwned"
    for name, content in [("evil-pickle", pickle.dumps(_Trap(marker))), ("evil-skops", None)]:
        target = repository / name / "1"
        shutil.copytree(model_repository / "iris-knn" / "1", target)
        card = json.loads((target / "card.json").read_text())
        (target / "card.json").write_text(json.dumps({**card, "name": name}))
        if content is None:
            sio.dump({"steps": [subprocess.check_call]}, target / "model.skops")
        else:
            (target / "model.skops").write_bytes(content)
    service = start_inference(repository, tmp_path, PROTOSERVE_INFERENCE_WORKERS="1")
    try:
        from protoserve.common.v1 import model_pb2 as common
        from protoserve.inference.v1 import inference_service_pb2 as pb
        from protoserve.inference.v1 import inference_service_pb2_grpc

        with grpc.insecure_channel(service.address) as channel:
            stub = inference_service_pb2_grpc.InferenceServiceStub(channel)
            states = {m.name: [(common.ModelVersionState.Name(v.state), v.reason) for v in m.versions]
                      for m in stub.ListModels(pb.ListModelsRequest(), timeout=30).models}
            assert states["iris-knn"][0][0].endswith("READY"), states
            for evil in ("evil-pickle", "evil-skops"):
                assert states[evil][0][0].endswith("FAILED") and states[evil][0][1], states
                request = pb.PredictRequest(model=evil)
                request.rows.add().update({"sepal_length": 1})
                with pytest.raises(grpc.RpcError) as caught:
                    stub.Predict(request, timeout=30)
                assert caught.value.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)  # type: ignore[attr-defined]
        assert health.check(service.address) == "SERVING"
    finally:
        service.terminate()
    assert not marker.exists()


TRAVERSALS = ["../iris-knn", "..", "iris-knn/../risk", "..%2Frisk", "%2e%2e", "/etc/passwd", "iris-knn%00", "~root"]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_path_traversal_in_model_names_and_versions_is_refused(system: System, name: str) -> None:
    from protoserve.inference.v1 import inference_service_pb2 as pb
    from protoserve.inference.v1 import inference_service_pb2_grpc

    refused = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
    with grpc.insecure_channel(system.address("inference-0")) as channel:
        stub = inference_service_pb2_grpc.InferenceServiceStub(channel)
        for request in (pb.GetModelRequest(model=name), pb.GetModelRequest(model="iris-knn", version=name)):
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetModel(request, metadata=system.metadata("predict"), timeout=30)
            assert caught.value.code() in refused, (request, caught.value)  # type: ignore[attr-defined]
    with httpx.Client(base_url=system.gateway_url, timeout=30, headers=system.bearer("admin")) as client:
        segment = quote(name, safe="").replace(".", "%2E")  # dots too, or the client drops ".." segments
        for path in (f"/v1/models/{segment}", f"/v1/models/iris-knn?version={segment}", f"/v2/models/{segment}",
                     f"/v2/models/iris-knn/versions/{segment}", f"/v1/models/{segment}:predict"):
            response = client.request("POST" if path.endswith(":predict") else "GET", path,
                                      json={"rows": [{}]} if path.endswith(":predict") else None)
            assert response.status_code in (400, 404), (path, response.status_code, response.text[:200])
