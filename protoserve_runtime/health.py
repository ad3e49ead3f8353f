"""Client side of grpc.health.v1: one check, or waiting until a server reports SERVING."""

from __future__ import annotations

import time

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


def wait_serving(address: str, timeout: float = 60.0, service: str = "") -> None:
    deadline = time.monotonic() + timeout
    status = "UNREACHABLE"
    while time.monotonic() < deadline:
        status = check(address, service)
        if status == "SERVING":
            return
        time.sleep(0.1)
    raise TimeoutError(f"{address} is {status} after {timeout:.0f}s")


def wait_http_ok(url: str, timeout: float = 60.0) -> None:
    """Wait until GET url answers 200 (for HTTP services such as the gateway)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last = "unreachable"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last = str(response.status)
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} is not ready after {timeout:.0f}s ({last})")
