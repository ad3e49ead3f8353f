"""Monitoring and prediction-event settings: documented, and bad values refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_svc.event_settings import EventSettings
from monitoring_svc.settings import MonitoringSettings
from protoserve_runtime.settings import SettingsError, describe, from_env


def test_windows_are_parsed_shortest_first() -> None:
    settings = from_env(MonitoringSettings, {"PROTOSERVE_MONITORING_WINDOWS": "1h, 30s,7d", "PROTOSERVE_ALERT_WINDOW": "30s"})
    assert settings.windows == [("30s", 30), ("1h", 3600), ("7d", 604800)]


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("PROTOSERVE_MONITORING_WINDOWS", "5 minutes", "is not a window"),
        ("PROTOSERVE_ALERT_WINDOW", "2h", "PROTOSERVE_ALERT_WINDOW must be one of"),
        ("PROTOSERVE_DRIFT_PSI_THRESHOLD", "high", "PROTOSERVE_DRIFT_PSI_THRESHOLD"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        from_env(MonitoringSettings, {variable: value})


def test_event_buffer_must_hold_something() -> None:
    with pytest.raises(SettingsError, match="PROTOSERVE_EVENTS_BUFFER_ROWS"):
        from_env(EventSettings, {"PROTOSERVE_EVENTS_BUFFER_ROWS": "0"})


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for cls in (MonitoringSettings, EventSettings):
        for variable, _default, help_text in describe(cls):
            assert f"`{variable}`" in readme, f"{variable} is missing from the README"
            assert help_text
