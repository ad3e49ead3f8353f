"""OpenTelemetry tracing: off by default and free when off, on with the standard ``OTEL_*`` variables.

Whether tracing is on is decided once, in a composition root, from the environment
(``TracingConfig.from_environ``): ``OTEL_SDK_DISABLED=true`` turns it off whatever else is set;
``OTEL_TRACES_EXPORTER=otlp|console`` or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns it on; ``PROTOSERVE_TRACES_FILE`` writes finished spans
as JSON lines to a file (tests, debugging). Everything else (sampler, service name, headers) is read
by the SDK itself from its own ``OTEL_*`` variables.

This module imports no OpenTelemetry package. ``start`` imports the SDK (``tracing_sdk``) only when
tracing is on, and returns None when it is off: a service then builds exactly the objects it builds
without tracing (no wrappers, no traced batchers, no extra metadata), so calls pay nothing for it.
``start`` must run in each serving process after it started (each spawned worker): the span
processor's export thread does not survive a fork.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protoserve_runtime.tracing_sdk import Tracing

# The standard variables every service honours (read here or by the SDK); deployment files may set only these.
OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_PROPAGATORS",
)


@dataclass(frozen=True)
class TracingConfig:
    exporter: str | None  # otlp, console or file; None: tracing is off
    traces_file: Path | None = None  # where the file exporter appends its JSON lines

    @property
    def enabled(self) -> bool:
        return self.exporter is not None

    @classmethod
    def from_environ(cls, traces_file: Path | None = None, environ: Mapping[str, str] | None = None) -> TracingConfig:
        """traces_file: the service's PROTOSERVE_TRACES_FILE setting (from its ServerSettings)."""
        env = os.environ if environ is None else environ
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls(None)
        if traces_file is not None:
            return cls("file", traces_file)
        chosen = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        if chosen == "none":
            return cls(None)
        if chosen:
            # Only the first of a comma-separated list is used; an unknown name means OTLP, the standard one.
            first = chosen.split(",")[0].strip()
            return cls(first if first in ("otlp", "console") else "otlp")
        if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            return cls("otlp")
        return cls(None)


def start(service: str, config: TracingConfig) -> Tracing | None:
    """Set up tracing in this process for ``service`` (its default service.name is protoserve-SERVICE);
    None, with nothing imported, when it is off."""
    if not config.enabled:
        return None
    from protoserve_runtime import tracing_sdk  # the SDK is imported only now

    assert config.exporter is not None
    return tracing_sdk.start(service, config.exporter, config.traces_file)
