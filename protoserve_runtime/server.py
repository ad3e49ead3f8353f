"""Bootstrap shared by every gRPC service: health, reflection, limits, graceful stop on SIGTERM.

A service hands ``run_server`` its servicers and a ``load`` coroutine; health stays NOT_SERVING
until ``load`` returns, and goes back to NOT_SERVING as soon as a stop signal arrives, so load
balancers drain the process before in-flight calls are given ``grace_seconds`` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from protoserve_runtime import server_info, tls
from protoserve_runtime.grpc_errors import tolerate_undecodable
from protoserve_runtime.grpc_options import channel_options
from protoserve_runtime.handler_wrappers import HandlerWrapper, WrappingRegistrar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceBinding:
    """One servicer: its full service name and the function that adds it to a server."""

    name: str
    add: Callable[[grpc.aio.Server], None]


@dataclass(frozen=True)
class ServerOptions:
    address: str
    max_message_bytes: int
    grace_seconds: float
    reuse_port: bool = False


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def enable_reflection(names: Sequence[str], registrar: Any) -> None:
    """Server reflection under both service names clients use: grpc.reflection.v1 (which newer
    clients ask first) and v1alpha. Their messages are the same on the wire, so one servicer
    answers both."""
    servicer = reflection.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, registrar)
    v1 = grpc.method_handlers_generic_handler(REFLECTION_V1, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    })
    registrar.add_generic_rpc_handlers((v1,))


class GrpcServer:
    """A started grpc.aio server with its health servicer; stop() drains it."""

    def __init__(
        self,
        services: Sequence[ServiceBinding],
        options: ServerOptions,
        wrappers: Sequence[HandlerWrapper] = (),
        name: str = "",
        version: str = "",
    ) -> None:
        self.options = options
        self.health = HealthServicer()
        self._server = grpc.aio.server(options=channel_options(options.max_message_bytes, options.reuse_port))
        # Every handler is registered through the wrappers, once, instead of per-call interceptors.
        registrar = cast(grpc.aio.Server, WrappingRegistrar(self._server, [*wrappers, tolerate_undecodable]))
        for service in services:
            service.add(registrar)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, registrar)
        names = [s.name for s in services]
        names += [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        if name:  # every service says which one it is and its version (server_info.py)
            server_info.add(registrar, name, version, [s.name for s in services])
            names.append(server_info.SERVICE_NAME)
        enable_reflection(names, registrar)
        self._service_names = [s.name for s in services]
        self.port = 0

    async def start(self) -> int:
        credentials = tls.server_credentials(tls.load())  # PROTOSERVE_TLS_*: TLS, or mTLS with a CA
        if credentials is None:
            self.port = self._server.add_insecure_port(self.options.address)
        else:
            self.port = self._server.add_secure_port(self.options.address, credentials)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.options.address}")
        await self.set_serving(False)
        await self._server.start()
        return self.port

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self._service_names]:
            await self.health.set(name, status)

    async def stop(self) -> None:
        await self.set_serving(False)
        await self._server.stop(self.options.grace_seconds)

    async def wait(self) -> None:
        await self._server.wait_for_termination()


async def run_server(
    service: str,
    version: str,
    services: Sequence[ServiceBinding],
    options: ServerOptions,
    load: Callable[[], Coroutine[Any, Any, None]],
    close: Callable[[], Awaitable[None]] | None = None,
    wrappers: Sequence[HandlerWrapper] = (),
    monitor: Callable[[GrpcServer], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop. ``monitor``, when given, runs from
    readiness until the stop signal (e.g. to follow sibling workers' readiness in health)."""
    server = GrpcServer(services, options, wrappers, name=service, version=version)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    port = await server.start()
    log.info("listening", extra={"address": options.address, "port": port, "health": "NOT_SERVING"})
    loader = asyncio.create_task(load())
    stopper = asyncio.create_task(stop_requested.wait())
    done, _ = await asyncio.wait({loader, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if loader in done:
        loader.result()  # a load that fails stops the process with its error
        await server.set_serving(True)
        log.info(f"{service} ready", extra={"port": port, "health": "SERVING"})
        watcher = asyncio.create_task(monitor(server)) if monitor else None
        await stopper
        if watcher is not None:
            watcher.cancel()
    else:
        loader.cancel()
    log.info("stopping: health NOT_SERVING, draining in-flight calls",
             extra={"grace_seconds": options.grace_seconds})
    await server.stop()
    if close is not None:
        await close()
    log.info("stopped")
