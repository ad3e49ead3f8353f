"""Composition root of the gateway: settings -> auth, upstreams, routes -> app -> uvicorn."""

from __future__ import annotations

import logging

import uvicorn
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.settings import GatewaySettings
from protoserve_runtime import auth
from protoserve_runtime import logging as json_logging
from protoserve_runtime.settings import from_env

log = logging.getLogger(__name__)


def app() -> Starlette:
    """The app of one worker process, wired from the environment."""
    settings = from_env(GatewaySettings)
    json_logging.configure("gateway", settings.log_level)
    authenticator = auth.authenticator(from_env(auth.AuthSettings))
    if not authenticator.enabled:
        log.warning("AUTH IS OFF: every call is let in (set PROTOSERVE_AUTH=on to require API keys)")
    return create_app(settings, authenticator)


def main() -> None:
    settings = from_env(GatewaySettings)
    json_logging.configure("gateway", settings.log_level)
    host, _, port = settings.gateway_address.rpartition(":")
    log.info("gateway starting", extra={"address": settings.gateway_address, "replicas": list(settings.replicas),
                                        "workers": settings.gateway_workers})
    # httptools parses HTTP in C; the asyncio loop stays the standard one that grpc.aio supports.
    # uvicorn's handlers would replace the JSON ones; SIGTERM stops it gracefully.
    uvicorn.run("gateway.main:app", factory=True, workers=settings.gateway_workers, host=host or "127.0.0.1",
                port=int(port), log_config=None, access_log=False, http="httptools", timeout_graceful_shutdown=10,
                server_header=False)


if __name__ == "__main__":
    main()
