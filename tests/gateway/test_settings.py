"""Gateway and auth settings: documented, validated at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import GatewaySettings
from protoserve_runtime.auth import AuthSettings
from protoserve_runtime.settings import SettingsError, describe, from_env


@pytest.mark.parametrize("cls", [GatewaySettings, AuthSettings])
def test_every_setting_is_documented_in_the_readme(cls: type) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for variable, _default, help_text in describe(cls):
        assert f"`{variable}`" in readme, f"{variable} is missing from the README"
        assert help_text


def test_replicas_and_upstreams() -> None:
    settings = from_env(GatewaySettings, {
        "PROTOSERVE_INFERENCE_ADDRESS": "127.0.0.1:1",
        "PROTOSERVE_UPSTREAMS": "protoserve.explain.v1.ExplainService=127.0.0.1:2|127.0.0.1:3",
    })
    assert settings.replicas == ("127.0.0.1:1",)
    assert settings.upstream_map() == {
        "protoserve.explain.v1.ExplainService": ("127.0.0.1:2", "127.0.0.1:3"),
        "protoserve.monitoring.v1.MonitoringService": ("127.0.0.1:50054",),
    }
    assert from_env(GatewaySettings, {"PROTOSERVE_INFERENCE_REPLICAS": "a:1, b:2"}).replicas == ("a:1", "b:2")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PROTOSERVE_UPSTREAMS", "no-address"), ("PROTOSERVE_RETRIES", "-1"), ("PROTOSERVE_DEADLINE_SECONDS", "0"),
     ("PROTOSERVE_MAX_BODY_BYTES", "10")],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        from_env(GatewaySettings, {variable: value})
