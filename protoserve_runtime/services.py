"""The services `protoserve up` starts, in start order, and how each one is addressed.

Adding a service to the system is one entry here: `up` starts it, waits for it to be ready,
prints where it listens, and `protoserve serve NAME` runs it in the foreground.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str  # run as `python -m module`
    address_setting: str  # the PROTOSERVE_* variable holding its host:port
    default_address: str
    protocol: Literal["grpc", "http"] = "grpc"
    hint: str = ""  # printed by `up`: how to try it

    @property
    def address(self) -> str:
        return os.environ.get(self.address_setting) or self.default_address


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "inference", "inference_svc.main", "PROTOSERVE_INFERENCE_ADDRESS", "127.0.0.1:50051",
        hint="grpcurl -plaintext {address} list",
    ),
    ServiceSpec(
        "explain", "explain_svc.main", "PROTOSERVE_EXPLAIN_ADDRESS", "127.0.0.1:50053",
        hint=("grpcurl -plaintext -d '{{\"model\": \"sentiment\", \"rows\": [{{\"text\": \"a terrible film\"}}]}}' "
              "{address} protoserve.explain.v1.ExplainService/Explain"),
    ),
    ServiceSpec(
        "monitoring", "monitoring_svc.main", "PROTOSERVE_MONITORING_ADDRESS", "127.0.0.1:50054",
        hint="grpcurl -plaintext {address} describe protoserve.monitoring.v1.MonitoringService",
    ),
    ServiceSpec(
        "gateway", "gateway.main", "PROTOSERVE_GATEWAY_ADDRESS", "127.0.0.1:8080", protocol="http",
        hint="open http://{address}/ (API docs at /docs)",
    ),
)


def by_name(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(name)


# The job worker has no port: it reads the job stream in Redis.
WORKER_MODULE = "worker_svc.main"

# Every deployable by name (its image target, compose service and manifest): `protoserve serve NAME`.
DEPLOYABLES: dict[str, str] = {**{spec.name: spec.module for spec in SERVICES}, "worker": WORKER_MODULE}


# Services `protoserve up --replicas NAME=N` can run several of, and the gateway setting listing them.
REPLICA_SETTINGS = {"inference": "PROTOSERVE_INFERENCE_REPLICAS"}


def parse_replicas(values: list[str]) -> dict[str, int]:
    """NAME=N arguments -> {NAME: N}; ValueError naming the bad argument."""
    counts: dict[str, int] = {}
    for value in values:
        name, sep, count = value.partition("=")
        if not sep or name not in REPLICA_SETTINGS or not count.isdigit() or int(count) < 1:
            raise ValueError(f"--replicas {value!r}: expected NAME=N with N >= 1, NAME one of {', '.join(REPLICA_SETTINGS)}")
        counts[name] = int(count)
    return counts


# A replica's worker processes serve /metrics on port + worker index: replicas keep this many ports apart.
METRICS_PORT_STRIDE = 10


def shift_port(address: str, offset: int) -> str:
    host, _, port = address.rpartition(":")
    return f"{host}:{int(port) + offset}"


def replica_addresses(address: str, count: int) -> list[str]:
    """count addresses on consecutive ports from address's port (each replica has its own port)."""
    return [shift_port(address, i) for i in range(count)]
