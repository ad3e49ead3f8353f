"""What the deployment files may say, taken from the code: commands, settings and addresses."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path
from typing import Any

import yaml

from protoserve_runtime.cli import parser
from protoserve_runtime.settings import describe
from tests.harness import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"

# The settings classes each deployed process reads (a container runs one of them).
COMMON = ["protoserve_runtime.auth:AuthSettings", "protoserve_runtime.tls:TlsSettings"]
SERVICE_SETTINGS: dict[str, list[str]] = {
    "inference": ["inference_svc.settings:InferenceSettings", "inference_svc.events:EventSettings",
                  "inference_svc.redis_client:RedisSettings", "inference_svc.jobs.settings:JobSettings",
                  "inference_svc.training.settings:TrainingSettings", *COMMON],
    "explain": ["inference_svc.settings:InferenceSettings", "inference_svc.explain.settings:ExplainSettings",
                "inference_svc.redis_client:RedisSettings", *COMMON],  # the serving state it follows
    "monitoring": ["monitoring_svc.settings:MonitoringSettings", *COMMON],
    # Job workers serve no port: no auth, no TLS.
    "worker": ["inference_svc.settings:InferenceSettings", "inference_svc.redis_client:RedisSettings",
               "inference_svc.jobs.settings:JobSettings", "inference_svc.training.settings:TrainingSettings"],
    "gateway": ["gateway.settings:GatewaySettings", *COMMON],
}


def read_variables(service: str) -> set[str]:
    """Every PROTOSERVE_* variable the service reads (the fields of its settings dataclasses)."""
    names: set[str] = set()
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
