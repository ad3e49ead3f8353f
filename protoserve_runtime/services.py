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
        "explain", "inference_svc.explain.main", "PROTOSERVE_EXPLAIN_ADDRESS", "127.0.0.1:50053",
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
