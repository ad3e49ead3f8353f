"""Settings come from PROTOSERVE_* variables; bad values fail at start, naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_svc.settings import InferenceSettings
from protoserve_runtime.settings import SettingsError, describe, from_env


def test_defaults_and_environment() -> None:
    settings = from_env(InferenceSettings, {
        "PROTOSERVE_MAX_ROWS": "20",
        "PROTOSERVE_MODEL_REPOSITORY": "/srv/models",
        "PROTOSERVE_TRUSTED_TYPES": "a.B, c.D",
        "UNRELATED": "x",
    })
    assert settings.models.max_rows == 20
    assert settings.models.model_repository == Path("/srv/models")
    assert settings.models.trusted_types == ("a.B", "c.D")
    assert settings.addresses.inference_address == "127.0.0.1:50051"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("PROTOSERVE_MAX_ROWS", "many", "PROTOSERVE_MAX_ROWS='many' is not a valid int"),
        ("PROTOSERVE_MAX_ROWS", "0", "at least 1"),
        ("PROTOSERVE_MAX_MESSAGE_BYTES", "1024", "at least 4 MiB"),
        ("PROTOSERVE_GRACE_SECONDS", "soon", "PROTOSERVE_GRACE_SECONDS"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        from_env(InferenceSettings, {variable: value})


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for variable, _default, help_text in describe(InferenceSettings):
        assert f"`{variable}`" in readme, f"{variable} is missing from the README"
        assert help_text


def test_each_setting_is_declared_once() -> None:
    """A variable two services read is declared in one group that both hold, never twice."""
    import dataclasses
    import importlib
    import typing

    from tests.deploy.manifests import SERVICE_SETTINGS

    declared: dict[str, str] = {}
    seen: set[type] = set()

    def walk(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[field.name]):
                walk(hints[field.name])
                continue
            owner = declared.setdefault(field.name, cls.__qualname__)
            assert owner == cls.__qualname__, f"{field.name} is declared in both {owner} and {cls.__qualname__}"

    for paths in SERVICE_SETTINGS.values():
        for path in paths:
            module, _, name = path.partition(":")
            walk(getattr(importlib.import_module(module), name))
    assert {"model_repository", "redis_url", "max_message_bytes", "inference_address"} <= declared.keys()
