"""Upstream gRPC replicas: client-side round robin over the healthy ones, retries, deadlines.

Each replica's ``grpc.health.v1`` status is polled in the background; a replica that is not SERVING
(or that just answered UNAVAILABLE) is skipped until it reports SERVING again. An idempotent call
that meets UNAVAILABLE is retried on the next replica, within the same overall deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protoserve_runtime import tls

log = logging.getLogger(__name__)

Metadata = Sequence[tuple[str, str]]


class Replica:
    def __init__(self, address: str, max_message_bytes: int) -> None:
        self.address = address
        self.max_message_bytes = max_message_bytes
        self._channel: grpc.aio.Channel | None = None
        self.healthy = True  # optimistic until the first check says otherwise
        self._calls: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}

    @property
    def channel(self) -> grpc.aio.Channel:
        """Opened on first use, inside the event loop that serves the calls."""
        if self._channel is None:
            self._channel = tls.aio_channel(self.address, tls.load(), self.max_message_bytes)  # mTLS when configured
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    def call(self, method: str, response_parser: Callable[[bytes], Any]) -> grpc.aio.UnaryUnaryMultiCallable:
        multicallable = self._calls.get(method)
        if multicallable is None:
            multicallable = self.channel.unary_unary(
                method, request_serializer=lambda m: m.SerializeToString(), response_deserializer=response_parser
            )
            self._calls[method] = multicallable
        return multicallable

    async def check(self, timeout: float) -> None:
        try:
            response = await health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            healthy = response.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError:
            healthy = False
        if healthy != self.healthy:
            log.info("replica health changed", extra={"replica": self.address, "healthy": healthy})
        self.healthy = healthy


class UpstreamPool:
    """The replicas of one gRPC service."""

    def __init__(self, addresses: Sequence[str], *, max_message_bytes: int, retries: int, health_interval: float) -> None:
        self.replicas = [Replica(a, max_message_bytes) for a in addresses]
        self.retries = retries
        self.health_interval = health_interval
        self._turn = itertools.count()
        self._watcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.gather(*(r.check(self.health_interval) for r in self.replicas))
            await asyncio.sleep(self.health_interval)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await asyncio.gather(*(r.close() for r in self.replicas))

    @property
    def ready(self) -> bool:
        return any(r.healthy for r in self.replicas)

    def pick(self, avoid: set[str]) -> Replica:
        """The next healthy replica not yet tried; any untried one when none is healthy."""
        n = len(self.replicas)
        start = next(self._turn)
        order = [self.replicas[(start + i) % n] for i in range(n)]
        for replica in order:
            if replica.healthy and replica.address not in avoid:
                return replica
        untried = [r for r in order if r.address not in avoid]
        return untried[0] if untried else order[0]

    async def unary(
        self,
        method: str,
        request: Any,
        response_parser: Callable[[bytes], Any],
        *,
        timeout: float,
        metadata: Metadata = (),
        idempotent: bool = False,
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        tried: set[str] = set()
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            replica = self.pick(tried)
            tried.add(replica.address)
            try:
                return await replica.call(method, response_parser)(
                    request, timeout=max(deadline - loop.time(), 0.001), metadata=tuple(metadata)
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                replica.healthy = False  # until its health check says SERVING again
                if attempt == attempts - 1 or loop.time() >= deadline:
                    raise
                log.warning("retrying on another replica", extra={"replica": replica.address, "method": method})
        raise AssertionError("unreachable")


class Upstreams:
    """Which pool serves which gRPC service: named ones from settings, everything else the inference replicas."""

    def __init__(self, default: UpstreamPool, by_service: Mapping[str, UpstreamPool]) -> None:
        self.default = default
        self.by_service = dict(by_service)

    def for_service(self, service: str) -> UpstreamPool:
        return self.by_service.get(service, self.default)

    def pools(self) -> list[UpstreamPool]:
        return [self.default, *self.by_service.values()]

    def start(self) -> None:
        for pool in self.pools():
            pool.start()

    async def close(self) -> None:
        await asyncio.gather(*(pool.close() for pool in self.pools()))
