"""The HTTP/JSON twin of bench/loadgen.py: Open Inference Protocol REST with prebuilt request bytes.

Same shape as the gRPC load generator (its `drive` loop and process fan-out): each client process
keeps ``concurrency / processes`` POSTs in flight, each the same prebuilt HTTP/1.1 request (headers
and JSON body serialized once, no HTTP library or JSON work per call) on its own connection with
`Connection: close` (gunicorn's sync workers close every connection anyway), reading the answer to
the end and counting only status 200. On this machine that costs the client about a third less CPU
per request than aiohttp, CPU the server under test would otherwise lose on a small box.
The address is the full URL, e.g. http://127.0.0.1:8080/models/iris-knn/predict.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request

from bench import loadgen


def server_ready(url: str, timeout: float = 1.0, path: str = "/v2/health/ready") -> bool:
    """GET path (the Open Inference Protocol's readiness by default) on the server of url answers 200."""
    try:
        with urllib.request.urlopen(urllib.parse.urljoin(url, path), timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def post(url: str, body: bytes, timeout: float = 30) -> bytes:
    """One POST of a JSON body; the answer's body (an HTTPError when its status is not 2xx)."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return bytes(response.read())


def post_request(url: str, body: bytes) -> bytes:
    """The whole HTTP/1.1 POST of a JSON body to url, as bytes on the wire."""
    parts = urllib.parse.urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def client(
    url: str, body: bytes, concurrency: int, warmup: float, duration: float, server_pid: int | None
) -> loadgen.Result:
    parts = urllib.parse.urlsplit(url)
    request = post_request(url, body)

    async def send() -> bool:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), 30)
            try:
                writer.write(request)
                answer = await asyncio.wait_for(reader.read(), 30)  # to EOF: the server closes after answering
            finally:
                writer.close()
        except (OSError, TimeoutError):
            return False
        status = answer.split(b" ", 2)[1:2]
        return status == [b"200"]

    return await loadgen.drive([send], concurrency, warmup, duration, server_pid)
