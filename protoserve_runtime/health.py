"""Client side of grpc.health.v1: one check, or waiting until a server reports SERVING."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protoserve_runtime import tls

SERVING = health_pb2.HealthCheckResponse.SERVING


def check(address: str, service: str = "", timeout: float = 2.0) -> str:
    """The status name the server at address reports (SERVING, NOT_SERVING, ...), or UNREACHABLE."""
    with tls.channel(address) as channel:  # TLS / mTLS when PROTOSERVE_TLS_* are set
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return "UNREACHABLE"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


class StartAborted(Exception):
    """Waiting for a service ended before it was ready: the reason says why (it exited, or a stop was asked)."""


Abort = Callable[[], str]  # a reason to stop waiting, or "" to go on


def _check_abort(abort: Abort | None) -> None:
    reason = abort() if abort is not None else ""
    if reason:
        raise StartAborted(reason)


def wait_serving(address: str, timeout: float = 60.0, service: str = "", abort: Abort | None = None) -> None:
    deadline = time.monotonic() + timeout
    status = "UNREACHABLE"
    while time.monotonic() < deadline:
        _check_abort(abort)
        status = check(address, service, timeout=1.0)
        if status == "SERVING":
            return
        time.sleep(0.1)
    raise TimeoutError(f"{address} is {status} after {timeout:.0f}s")


def wait_http_ok(url: str, timeout: float = 60.0, abort: Abort | None = None) -> None:
    """Wait until GET url answers 200 (for HTTP services such as the gateway)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last = "unreachable"
    while time.monotonic() < deadline:
        _check_abort(abort)
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
                last = str(response.status)
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} is not ready after {timeout:.0f}s ({last})")
