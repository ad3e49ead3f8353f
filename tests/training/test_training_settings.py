"""Training settings: documented in the README, bad values refused naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from protoserve_models.training.settings import TrainingSettings
from protoserve_runtime.settings import SettingsError, describe, from_env


def test_every_training_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for variable, _default, help_text in describe(TrainingSettings):
        assert f"`{variable}`" in readme, f"{variable} is missing from the README"
        assert help_text


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("PROTOSERVE_TRAINING_MAX_CSV_BYTES", "0", "PROTOSERVE_TRAINING_MAX_CSV_BYTES must be at least 1"),
        ("PROTOSERVE_PROMOTION_MARGIN", "2", "PROTOSERVE_PROMOTION_MARGIN must be between -1 and 1"),
        ("PROTOSERVE_PROMOTION_MARGIN", "much", "PROTOSERVE_PROMOTION_MARGIN='much'"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        from_env(TrainingSettings, {variable: value})
