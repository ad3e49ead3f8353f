"""What the deployment files may say, taken from the code: commands, settings and addresses."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path
from typing import Any

import yaml

from protoserve_cli.main import parser
from protoserve_runtime.settings import describe
from protoserve_runtime.tracing import OTEL_VARIABLES
from tests.harness import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"

# The settings each deployed process reads (a container runs one of them): its own class, whose
# groups hold what it shares with the others, and TLS, which the runtime reads where it listens.
TLS = "protoserve_runtime.tls:TlsSettings"
SERVICE_SETTINGS: dict[str, list[str]] = {
    "inference": ["inference_svc.settings:InferenceSettings", TLS],
    "explain": ["explain_svc.settings:ExplainSettings", TLS],
    "monitoring": ["monitoring_svc.settings:MonitoringSettings", TLS],
    "worker": ["worker_svc.settings:WorkerSettings"],  # job workers serve no port: no auth, no TLS
    "gateway": ["gateway.settings:GatewaySettings", TLS],
}


def read_variables(service: str) -> set[str]:
    """Every PROTOSERVE_* variable the service reads (the fields of its settings dataclasses), and the
    standard OTEL_* variables of tracing, which every service sets up."""
    names: set[str] = set(OTEL_VARIABLES)
    for path in SERVICE_SETTINGS[service]:
        module, _, cls = path.partition(":")
        names |= {row[0] for row in describe(getattr(importlib.import_module(module), cls))}
    return names


def check_command(argv: list[str]) -> argparse.Namespace:
    """argv must be a `protoserve ...` command the CLI accepts; returns what it parsed to."""
    assert argv[0] == "protoserve", argv
    try:
        return parser().parse_args(argv[1:])
    except SystemExit as exc:
        raise AssertionError(f"`{' '.join(argv)}` is not a protoserve command") from exc


def service_of(argv: list[str]) -> str:
    """The service a `protoserve serve NAME` or `protoserve worker` command runs."""
    args = check_command(argv)
    return str(args.service) if args.command == "serve" else str(args.command)


def port_of(address: str) -> int:
    match = re.fullmatch(r"(?:dns:///)?[\w.\-]*:(\d+)", address)
    assert match, f"{address!r} is not host:port"
    return int(match.group(1))


def host_of(address: str) -> str:
    return address.removeprefix("dns:///").rpartition(":")[0]


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
