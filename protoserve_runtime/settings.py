"""Settings read from environment variables that start with ``PROTOSERVE_``.

Each service declares a frozen dataclass of its settings and builds it once, in its composition
root, with ``from_env``; every field ``foo_bar`` is read from ``PROTOSERVE_FOO_BAR``. A field whose
type is itself a settings dataclass is a *group* (declared with ``group``): the settings that several
services share (server, addresses, Redis, models) are declared once, in one group, and each service
that needs them holds that group. Bad values fail at start, naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ENV_PREFIX = "PROTOSERVE_"
T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _parse(raw: str, kind: Any, name: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):  # Optional[X]: empty means None
        inner = [a for a in typing.get_args(kind) if a is not type(None)][0]
        return None if raw == "" else _parse(raw, inner, name)
    if origin is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes", "on"}
        if kind is Path:
            return Path(raw).expanduser()
        return kind(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {getattr(kind, '__name__', kind)}") from exc


def from_env(cls: type[T], environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
    """Build the settings dataclass cls from the environment; overrides win over the environment."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in overrides:
            values[field.name] = overrides[field.name]
            continue
        if dataclasses.is_dataclass(hints[field.name]):
            values[field.name] = from_env(hints[field.name], environ)
            continue
        name = env_name(field.name)
        if name in environ:
            values[field.name] = _parse(environ[name], hints[field.name], name)
    settings = cls(**values)
    validate = getattr(settings, "validate", None)
    if validate is not None:
        validate()
    return settings


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """(variable, default, help) for every field of a settings class and its groups, for docs and --help."""
    rows = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[field.name]):
            rows.extend(describe(hints[field.name]))
            continue
        default = field.default if field.default is not dataclasses.MISSING else None
        if field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        rows.append((env_name(field.name), default, field.metadata.get("help", "")))
    return rows


def setting(default: Any, help: str) -> Any:
    """A dataclass field with a default and a one-line help text."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: default, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def group(cls: type[T]) -> T:
    """A field holding a group of settings shared with other services (read with the same variables)."""
    return dataclasses.field(default_factory=cls)  # type: ignore[return-value]


@dataclass(frozen=True)
class ServerSettings:
    """What every server process shares: message size, shutdown grace, log level."""

    max_message_bytes: int = setting(64 * 1024 * 1024, "largest gRPC message accepted or sent, in bytes")
    grace_seconds: float = setting(10.0, "time in-flight calls get to finish after SIGTERM")
    log_level: str = setting("info", "debug, info, warning or error")
    log_format: str = setting("", "json or text (one readable line per event); empty: text on a terminal, JSON otherwise")
    restarts: int = setting(0, "set by protoserve up: how many times it restarted this service (the "
                            "protoserve_process_restarts metric)")
    traces_file: Path | None = setting(
        None, "turns tracing on and appends each finished span to this file as a JSON line instead of exporting it "
        "(tests, debugging); tracing is otherwise set with the standard OTEL_* variables"
    )

    def validate(self) -> None:
        if self.max_message_bytes < 4 * 1024 * 1024:
            raise SettingsError("PROTOSERVE_MAX_MESSAGE_BYTES must be at least 4 MiB")
        if self.log_format not in ("", "json", "text"):
            raise SettingsError("PROTOSERVE_LOG_FORMAT must be json, text or empty")


@dataclass(frozen=True)
class ServiceAddresses:
    """Where each service listens: a server binds its own address, its clients dial the others'."""

    inference_address: str = setting("127.0.0.1:50051", "host:port the inference gRPC server listens on")
    explain_address: str = setting("127.0.0.1:50053", "host:port the explain gRPC server listens on")
    monitoring_address: str = setting("127.0.0.1:50054", "host:port the monitoring gRPC server listens on")
    gateway_address: str = setting("127.0.0.1:8080", "host:port the gateway's HTTP server listens on")
