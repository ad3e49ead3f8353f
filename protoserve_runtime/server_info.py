"""ServerInfoService: every gRPC server says which service it is and at which version.

A service's version is the ``__version__`` of the package of its composition root
(``inference_svc.main`` -> ``inference_svc``), so each service is versioned on its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import grpc
from protoserve.serverinfo.v1 import server_info_service_pb2 as pb
from protoserve.serverinfo.v1 import server_info_service_pb2_grpc as pb_grpc

from protoserve_runtime import __version__ as RUNTIME_VERSION

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ServerInfoService"].full_name


def service_version(name: str) -> str:
    """The version of the service called name in services.py (the runtime's for unknown names)."""
    from protoserve_runtime.services import by_name

    try:
        package = by_name(name).module.rpartition(".")[0]
    except KeyError:
        return RUNTIME_VERSION
    return str(getattr(importlib.import_module(package), "__version__", RUNTIME_VERSION))


class ServerInfoServicer(pb_grpc.ServerInfoServiceServicer):
    def __init__(self, service: str, grpc_services: Sequence[str]) -> None:
        self._response = pb.GetServerInfoResponse(
            service=service, version=service_version(service), grpc_services=list(grpc_services)
        )

    async def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetServerInfoResponse:
        return self._response


def add(server: grpc.aio.Server, service: str, grpc_services: Sequence[str]) -> None:
    pb_grpc.add_ServerInfoServiceServicer_to_server(ServerInfoServicer(service, grpc_services), server)


def fetch(channel: grpc.Channel, timeout: float = 5.0) -> pb.GetServerInfoResponse:
    """The answer of the server behind a blocking channel."""
    return pb_grpc.ServerInfoServiceStub(channel).GetServerInfo(pb.GetServerInfoRequest(), timeout=timeout)
