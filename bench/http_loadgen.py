"""The HTTP/JSON twin of bench/loadgen.py: Open Inference Protocol REST with a prebuilt JSON body.

Same shape as the gRPC load generator (its `drive` loop and process fan-out): each client process
keeps ``concurrency / processes`` POSTs in flight with aiohttp, sending the same serialized body
(no JSON work per call), and counts only answers with HTTP status 200 (the body is read in full).
The address is the full infer URL, e.g. http://127.0.0.1:8080/v2/models/iris-knn/infer.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import aiohttp

from bench import loadgen


def server_ready(url: str, timeout: float = 1.0) -> bool:
    """GET /v2/health/ready on the server of url answers 200."""
    try:
        with urllib.request.urlopen(urllib.parse.urljoin(url, "/v2/health/ready"), timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


async def client(
    url: str, body: bytes, concurrency: int, warmup: float, duration: float, server_pid: int | None
) -> loadgen.Result:
    # No pool limit: each in-flight loop holds at most one connection (kept alive when the server allows).
    connector = aiohttp.TCPConnector(limit=0)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def send() -> bool:
            try:
                async with session.post(url, data=body) as response:
                    await response.read()
                    return response.status == 200
            except (TimeoutError, aiohttp.ClientError):
                return False

        return await loadgen.drive([send], concurrency, warmup, duration, server_pid)
