"""API keys: no key and wrong key are 401/UNAUTHENTICATED, a missing scope 403/PERMISSION_DENIED,
on every route family of the gateway and on direct gRPC calls; health and the page stay open."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from protoserve.inference.v1 import inference_service_pb2 as pb
from protoserve.inference.v1 import inference_service_pb2_grpc

from gateway.discovery import discover_routes
from protoserve_runtime import health
from protoserve_runtime.auth import ADMIN, OPEN, KeyStore, scope_for
from tests.gateway.conftest import SCOPED
from tests.gateway.test_rest import EXAMPLES

OIP_ROUTES = [("GET", "/v2"), ("GET", "/v2/models/iris-knn"), ("GET", "/v2/models/iris-knn/ready"),
              ("POST", "/v2/models/iris-knn/infer")]
OPEN_ROUTES = ["/healthz", "/", "/docs", "/openapi.json", "/static/app.js", "/v2/health/live", "/v2/health/ready"]


def _rest_calls() -> list[tuple[str, str, Any, str]]:
    calls = []
    for route in discover_routes():
        path, query, body = EXAMPLES[route.full_method][0]
        calls.append((route.http_method, path, body, scope_for(route.full_method)))
    infer_scope = scope_for("/inference.GRPCInferenceService/ModelInfer")
    calls += [(method, path, {"inputs": []} if method == "POST" else None, infer_scope) for method, path in OIP_ROUTES]
    return calls


def _bearer(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


@pytest.mark.parametrize(("method", "path", "body", "scope"), _rest_calls(), ids=lambda v: str(v)[:40])
def test_rest_matrix(auth_system: dict[str, Any], method: str, path: str, body: Any, scope: str) -> None:
    keys = auth_system["keys"]
    with httpx.Client(base_url=auth_system["gateway"], timeout=30) as client:
        def status(key: str | None, raw: str | None = None) -> int:
            headers = {"authorization": raw} if raw else _bearer(key)
            return client.request(method, path, json=body, headers=headers).status_code

        assert status(None) == 401
        assert status("ps_00000000_not-a-real-key") == 401
        assert status(None, raw=f"Basic {keys['predict']}") == 401
        for key_scope in SCOPED:
            code = status(keys[key_scope])
            if key_scope in (scope, ADMIN):
                assert code not in (401, 403), (key_scope, code)
            else:
                assert code == 403, (key_scope, code)


def test_401_and_403_bodies(auth_system: dict[str, Any]) -> None:
    with httpx.Client(base_url=auth_system["gateway"]) as client:
        missing = client.get("/v1/models")
        assert missing.json()["code"] == "UNAUTHENTICATED" and "Bearer" in missing.json()["message"]
        denied = client.get("/v1/models", headers=_bearer(auth_system["keys"]["monitor"]))
        assert denied.json()["code"] == "PERMISSION_DENIED" and "predict" in denied.json()["message"]
        assert client.get("/v2/models/iris-knn", headers=_bearer(None)).json() == {
            "error": "an API key is required: send 'authorization: Bearer <key>'"}


@pytest.mark.parametrize("path", OPEN_ROUTES)
def test_health_and_page_stay_open(auth_system: dict[str, Any], path: str) -> None:
    response = httpx.get(auth_system["gateway"] + path, timeout=30)
    assert response.status_code not in (401, 403)


def _list_models(address: str, key: str | None) -> grpc.StatusCode:
    with grpc.insecure_channel(address) as channel:
        stub = inference_service_pb2_grpc.InferenceServiceStub(channel)
        metadata = (("authorization", f"Bearer {key}"),) if key else ()
        try:
            stub.ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return, attr-defined]
        return grpc.StatusCode.OK


def test_grpc_direct_matrix(auth_system: dict[str, Any]) -> None:
    address, keys = auth_system["inference"], auth_system["keys"]
    assert _list_models(address, None) == grpc.StatusCode.UNAUTHENTICATED
    assert _list_models(address, "ps_0_wrong") == grpc.StatusCode.UNAUTHENTICATED
    assert _list_models(address, keys["predict"]) == grpc.StatusCode.OK
    assert _list_models(address, keys["admin"]) == grpc.StatusCode.OK
    assert _list_models(address, keys["explain"]) == grpc.StatusCode.PERMISSION_DENIED
    assert _list_models(address, keys["monitor"]) == grpc.StatusCode.PERMISSION_DENIED
    assert health.check(address) == "SERVING"  # health needs no key


def test_revoked_key_stops_working_everywhere(auth_system: dict[str, Any]) -> None:
    store: KeyStore = auth_system["store"]
    key, record = store.create("short-lived", ["predict"])
    assert httpx.get(auth_system["gateway"] + "/v1/models", headers=_bearer(key)).status_code == 200
    assert _list_models(auth_system["inference"], key) == grpc.StatusCode.OK
    assert store.revoke(record.id)
    assert httpx.get(auth_system["gateway"] + "/v1/models", headers=_bearer(key)).status_code == 401
    assert _list_models(auth_system["inference"], key) == grpc.StatusCode.UNAUTHENTICATED


def test_scope_table() -> None:
    assert scope_for("/protoserve.inference.v1.InferenceService/Predict") == "predict"
    assert scope_for("/protoserve.explain.v1.ExplainService/Explain") == "explain"
    assert scope_for("/protoserve.monitoring.v1.MonitoringService/GetDrift") == "monitor"
    assert scope_for("/inference.GRPCInferenceService/RepositoryModelLoad") == ADMIN
    assert scope_for("/grpc.health.v1.Health/Check") == OPEN
    assert scope_for("/some.Unknown/Method") == ADMIN  # deny by default


def test_keys_cli_stores_only_hashes(tmp_path: Path) -> None:
    def protoserve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "protoserve_cli.main", "keys", "--data-dir", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=60)

    created = protoserve("create", "ci", "--scopes", "predict,monitor")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ps_")
    assert key not in (tmp_path / "api_keys.json").read_text()
    listed = protoserve("list")
    key_id = key.split("_")[1]
    assert key_id in listed.stdout and "predict,monitor" in listed.stdout
    assert protoserve("create", "x", "--scopes", "everything").returncode == 2
    assert protoserve("revoke", key_id).returncode == 0
    assert protoserve("revoke", key_id).returncode == 1
    assert KeyStore(tmp_path / "api_keys.json").lookup(key) is None


def test_grpc_direct_open_inference_protocol(auth_system: dict[str, Any]) -> None:
    import tritonclient.grpc as triton_grpc
    from tritonclient.utils import InferenceServerException

    client = triton_grpc.InferenceServerClient(auth_system["inference"])
    try:
        assert client.is_server_live()  # health of the protocol is open
        with pytest.raises(InferenceServerException, match="UNAUTHENTICATED"):
            client.get_model_metadata("iris-knn")
        with pytest.raises(InferenceServerException, match="PERMISSION_DENIED"):
            client.get_model_metadata("iris-knn", headers=_bearer(auth_system["keys"]["explain"]))
        with pytest.raises(InferenceServerException, match="PERMISSION_DENIED"):
            client.unload_model("risk", headers=_bearer(auth_system["keys"]["predict"]))  # load/unload need admin
        meta = client.get_model_metadata("iris-knn", headers=_bearer(auth_system["keys"]["predict"]))
        assert meta.name == "iris-knn"
    finally:
        client.close()
