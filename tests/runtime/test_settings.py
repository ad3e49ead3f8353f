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
    assert settings.max_rows == 20
    assert settings.model_repository == Path("/srv/models")
    assert settings.trusted_types == ("a.B", "c.D")
    assert settings.inference_address == "127.0.0.1:50051"


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
