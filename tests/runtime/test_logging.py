"""Log lines: JSON where a machine collects them, one readable line per event on a terminal."""

from __future__ import annotations

import io
import json
import logging

import pytest

from protoserve_runtime import logging as service_logging
from protoserve_runtime.settings import ServerSettings, SettingsError, from_env


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(**fields: object) -> logging.LogRecord:
    entry = logging.LogRecord("inference_svc.core", logging.INFO, __file__, 1, "model version loaded", None, None)
    entry.__dict__.update(fields)
    return entry


def test_text_on_a_terminal_and_json_elsewhere() -> None:
    assert service_logging.log_format("", Terminal()) == "text"
    assert service_logging.log_format("", io.StringIO()) == "json"
    assert service_logging.log_format("json", Terminal()) == "json"
    assert service_logging.log_format("text", io.StringIO()) == "text"


def test_a_text_line_reads_as_a_sentence_with_its_fields() -> None:
    line = service_logging.TextFormatter("inference").format(record(model="iris-knn", version="1"))
    assert "\n" not in line
    assert line.split()[1:5] == ["INFO", "inference", "model", "version"]
    assert line.endswith("model version loaded  model=iris-knn version=1")


def test_a_json_line_holds_every_field() -> None:
    entry = json.loads(service_logging.JsonFormatter("inference").format(record(model="iris-knn")))
    assert entry["service"] == "inference" and entry["level"] == "info" and entry["model"] == "iris-knn"
    assert entry["message"] == "model version loaded"


def test_the_format_setting_is_checked() -> None:
    assert from_env(ServerSettings, {"PROTOSERVE_LOG_FORMAT": "text"}).log_format == "text"
    with pytest.raises(SettingsError, match="PROTOSERVE_LOG_FORMAT"):
        from_env(ServerSettings, {"PROTOSERVE_LOG_FORMAT": "xml"})
