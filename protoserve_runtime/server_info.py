"""ServerInfoService: every gRPC server says which service it is and at which version.

A service's version is the ``__version__`` of its own package, handed in by its composition root
(``inference_svc.main`` passes ``inference_svc.__version__``), so each service is versioned on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from protoserve.serverinfo.v1 import server_info_service_pb2 as pb
from protoserve.serverinfo.v1 import server_info_service_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ServerInfoService"].full_name


class ServerInfoServicer(pb_grpc.ServerInfoServiceServicer):
    def __init__(self, service: str, version: str, grpc_services: Sequence[str]) -> None:
        self._response = pb.GetServerInfoResponse(service=service, version=version, grpc_services=list(grpc_services))

    async def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetServerInfoResponse:
        return self._response


def add(server: grpc.aio.Server, service: str, version: str, grpc_services: Sequence[str]) -> None:
    pb_grpc.add_ServerInfoServiceServicer_to_server(ServerInfoServicer(service, version, grpc_services), server)


def fetch(channel: grpc.Channel, timeout: float = 5.0) -> pb.GetServerInfoResponse:
    """The answer of the server behind a blocking channel."""
    return pb_grpc.ServerInfoServiceStub(channel).GetServerInfo(pb.GetServerInfoRequest(), timeout=timeout)
