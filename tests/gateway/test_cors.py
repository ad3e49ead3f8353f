"""CORS: preflight from an allowed origin passes, any other origin is refused; no wildcard with credentials."""

from __future__ import annotations

import httpx
import pytest

from gateway.settings import GatewaySettings
from protoserve_runtime.settings import SettingsError, from_env

PREFLIGHT = {"access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type"}


def test_preflight_from_allowed_origin(http: httpx.Client) -> None:
    response = http.options("/v1/models/iris-knn:predict", headers={"origin": "http://allowed.example", **PREFLIGHT})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://allowed.example"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "POST" in response.headers["access-control-allow-methods"]


def test_preflight_from_other_origin_is_refused(http: httpx.Client) -> None:
    response = http.options("/v1/models/iris-knn:predict", headers={"origin": "http://evil.example", **PREFLIGHT})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_simple_request_carries_the_header_only_for_allowed_origins(http: httpx.Client) -> None:
    allowed = http.get("/v1/models", headers={"origin": "http://allowed.example"})
    assert allowed.headers.get("access-control-allow-origin") == "http://allowed.example"
    other = http.get("/v1/models", headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_wildcard_with_credentials_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="cannot be combined"):
        from_env(GatewaySettings, {"PROTOSERVE_CORS_ORIGINS": "*", "PROTOSERVE_CORS_CREDENTIALS": "on"})
