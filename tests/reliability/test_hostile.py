"""Hostile input straight at each gRPC service and at the gateway: no INTERNAL/UNKNOWN and no 5xx,
no crash, and the services keep answering others while slow clients and connection floods last.
(schemathesis against the gateway's OpenAPI runs in tests/gateway; bench/hostile.py runs more.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import grpc
import httpx
import pytest

from protoserve_runtime import health
from tests.harness import REPO_ROOT
from tests.reliability.load import IRIS
from tests.reliability.system import HAS_MONITORING, System, wait_until

GRPC_SERVICES = ["inference-0", "explain", *(["monitoring"] if HAS_MONITORING else [])]


def fuzz(address: str, key: str, cases: int) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-m", "tests.reliability.grpc_fuzz", address, "--cases", str(cases),
                             "--key", key], capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert result.stdout.strip(), result.stderr[-4000:]
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("name", GRPC_SERVICES)
def test_property_based_fuzz_of_each_grpc_service(system: System, name: str) -> None:
    # not the admin key: fuzzed load/unload calls would change what the other tests are served
    report = fuzz(system.address(name), system.keys["user"], cases=40)
    assert report["bad_count"] == 0, report["bad"]
    assert report["alive"], report
    assert report["methods"] and int(report["cases"]) >= 40  # type: ignore[call-overload]


def raw_call(address: str, method: str, body: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    limit = 200 << 20
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", limit)]) as channel:
        try:
            channel.unary_unary(method)(body, metadata=metadata, timeout=60)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


PREDICT = "/protoserve.inference.v1.InferenceService/Predict"


@pytest.mark.parametrize("body", [b"\xff", b"\x0a\x04\xff\xfe\xc3\x28", b"\x12" * 40],
                         ids=["corrupt", "invalid-utf8-model-name", "truncated"])
def test_bytes_that_do_not_parse_are_invalid_argument_after_auth(system: System, body: bytes) -> None:
    address = system.address("inference-0")
    assert raw_call(address, PREDICT, body) == grpc.StatusCode.UNAUTHENTICATED  # auth still comes first
    assert raw_call(address, PREDICT, body, system.metadata("predict")) == grpc.StatusCode.INVALID_ARGUMENT


def test_struct_nested_beyond_the_parser_limit_is_invalid_argument(system: System) -> None:
    from protoserve.inference.v1 import inference_service_pb2 as pb

    value: dict[str, object] = {"x": 1}
    for _ in range(120):  # more levels than the protobuf parser's recursion limit (100)
        value = {"a": value}
    request = pb.PredictRequest(model="iris-knn")
    request.rows.add().update(value)
    body = request.SerializeToString()
    assert raw_call(system.address("inference-0"), PREDICT, body, system.metadata("predict")) == \
        grpc.StatusCode.INVALID_ARGUMENT


def test_a_100_mb_message_is_refused_and_the_service_lives(system: System) -> None:
    address = system.address("inference-0")
    huge = b"\x0a" + b"\x80\x80\x80\x32" + bytes(100 << 20)  # field 1, length 100 MiB
    assert raw_call(address, PREDICT, huge, system.metadata("predict")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    health.wait_serving(address, timeout=15)  # still (or again) serving: it did not fall over


def test_a_100_mb_http_body_is_413_and_the_gateway_lives(system: System) -> None:
    def chunks() -> Iterator[bytes]:
        block = b" " * (1 << 20)
        for _ in range(100):
            yield block

    with httpx.Client(base_url=system.gateway_url, timeout=60, headers=system.bearer("predict")) as client:
        try:
            response = client.post("/v1/models/iris-knn:predict", content=chunks(),
                                   headers={"content-type": "application/json"})
            assert response.status_code == 413, response.text[:300]
        except httpx.WriteError:
            pass  # the gateway answered 413 and closed before the whole body was sent: also a refusal
        assert client.post("/v1/models/iris-knn:predict", json={"rows": [IRIS]}).status_code == 200


def _connect(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_slow_clients_and_a_connection_flood_do_not_starve_others(system: System) -> None:
    """Hundreds of idle connections and half-sent requests on the gateway and a replica; a normal
    caller is still answered, and closing them gives the descriptors back."""
    gateway, replica = system.address("gateway"), system.address("inference-0")
    before = system.resources()
    sockets = []
    try:
        for i in range(200):
            for address in (gateway, replica):
                sock = _connect(address)
                if i % 2 and address == gateway:
                    sock.sendall(b"POST /v1/models/iris-knn:predict HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
                elif i % 2:
                    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # an HTTP/2 preface, then nothing
                sockets.append(sock)
        with httpx.Client(base_url=system.gateway_url, timeout=30, headers=system.bearer("predict")) as client:
            assert client.post("/v1/models/iris-knn:predict", json={"rows": [IRIS]}).status_code == 200
        assert health.check(replica, timeout=10) == "SERVING"
    finally:
        for sock in sockets:
            sock.close()

    def settled() -> bool:
        now = system.resources()
        return all(now[name][1] <= fds + 8 for name, (_, fds) in before.items() if name in now)

    wait_until(settled, timeout=60)
    assert all(system.alive().values())
