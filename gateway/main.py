"""Composition root of the gateway: settings -> auth, upstreams, routes -> app -> uvicorn."""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from gateway.app import create_app
from gateway.settings import GatewaySettings
from protoserve_runtime import auth, tls, tracing
from protoserve_runtime import logging as json_logging
from protoserve_runtime.settings import from_env

log = logging.getLogger(__name__)


def app() -> ASGIApp:
    """The app of one worker process, wired from the environment (tracing, when on, is set up
    here: in each worker process)."""
    settings = from_env(GatewaySettings)
    json_logging.configure("gateway", settings.server.log_level, settings.server.log_format)
    authenticator = auth.authenticator(settings.auth)
    if not authenticator.enabled:
        log.warning("AUTH IS OFF: every call is let in (set PROTOSERVE_AUTH=on to require API keys)")
    traced = tracing.start("gateway", tracing.TracingConfig.from_environ(settings.server.traces_file))
    return create_app(settings, authenticator, tracing=traced)


def main() -> None:
    settings = from_env(GatewaySettings)
    json_logging.configure("gateway", settings.server.log_level, settings.server.log_format)
    address = settings.addresses.gateway_address
    host, _, port = address.rpartition(":")
    log.info("gateway starting", extra={"address": address, "replicas": list(settings.replicas),
                                        "workers": settings.gateway_workers})
    # httptools parses HTTP in C; the asyncio loop stays the standard one that grpc.aio supports.
    # uvicorn's handlers would replace the JSON ones; SIGTERM stops it gracefully.
    config = uvicorn.Config("gateway.main:app", factory=True, workers=settings.gateway_workers, host=host or "127.0.0.1",
                            port=int(port), log_config=None, access_log=False, http="httptools",
                            timeout_graceful_shutdown=10, server_header=False,
                            **tls.http_server_options(tls.load()))  # HTTPS when PROTOSERVE_TLS_CERT/KEY are set
    server = uvicorn.Server(config)
    if settings.gateway_workers == 1:
        server.run()
        return
    Multiprocess(config, sockets=[listen_socket(host or "127.0.0.1", int(port))]).run()


def listen_socket(host: str, port: int) -> socket.socket:
    """The workers' shared socket, made with proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on
    connections accepted from such a socket, and without it a keep-alive response waits ~40 ms for
    delayed ACKs (uvicorn's own multi-worker socket has proto 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


if __name__ == "__main__":
    main()
