"""What every forwarded call shares: reading the body within limits, auth, the upstream call."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
from starlette.requests import Request

from gateway.errors import HttpError, from_rpc_error
from gateway.upstream import Upstreams
from protoserve_runtime import errors
from protoserve_runtime.auth import Authenticator, scope_for

if TYPE_CHECKING:
    from protoserve_runtime.tracing_sdk import Tracing

JSON_TYPES = ("application/json", "text/json")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it passes limit (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HttpError(400, "INVALID_ARGUMENT", "the content-length header is not a number")
        if int(declared) > limit:
            raise HttpError(413, "RESOURCE_EXHAUSTED", f"the body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "RESOURCE_EXHAUSTED", f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def require_json(request: Request, body: bytes) -> None:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body.strip() and kind not in JSON_TYPES:
        raise HttpError(415, "INVALID_ARGUMENT", f"the body must be application/json, not {kind or 'untyped'}")


class Caller:
    """Checks the caller's key for a method, then calls it on the right upstream pool."""

    def __init__(self, upstreams: Upstreams, auth: Authenticator, timeout: float) -> None:
        self.upstreams = upstreams
        self.auth = auth
        self.timeout = timeout

    def authorize(self, request: Request, method: str) -> list[tuple[str, str]]:
        """Metadata to forward (the key, so every service checks it too); 401/403 when refused."""
        header = request.headers.get("authorization")
        if header is not None and not (header.isascii() and header.isprintable()):
            if self.auth.enabled:
                raise HttpError(401, "UNAUTHENTICATED", "the authorization header holds characters a key never has")
            header = None  # auth is off: drop what gRPC metadata could not carry
        try:
            self.auth.check(header, scope_for(method))
        except errors.Unauthenticated as exc:
            raise HttpError(401, "UNAUTHENTICATED", exc.message) from None
        except errors.PermissionDenied as exc:
            raise HttpError(403, "PERMISSION_DENIED", exc.message) from None
        return [("authorization", header)] if header else []

    async def call(
        self,
        request: Request,
        method: str,
        message: Any,
        response_parser: Callable[[bytes], Any],
        idempotent: bool,
        metadata: list[tuple[str, str]] | None = None,
    ) -> Any:
        """metadata: what authorize already returned for this request (the key is checked once)."""
        if metadata is None:
            metadata = self.authorize(request, method)
        return await self.send(method, message, response_parser, idempotent, metadata)

    async def send(self, method: str, message: Any, response_parser: Callable[[bytes], Any], idempotent: bool,
                   metadata: list[tuple[str, str]]) -> Any:
        """The upstream call itself, the request authorized."""
        service = method.split("/")[1]
        try:
            return await self.upstreams.for_service(service).unary(
                method, message, response_parser, timeout=self.timeout, metadata=metadata, idempotent=idempotent
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None


class TracedCaller(Caller):
    """A Caller whose every upstream call is a CLIENT span whose traceparent goes along in the
    metadata; built instead of Caller only when tracing is on, so calls pay nothing for it otherwise."""

    def __init__(self, upstreams: Upstreams, auth: Authenticator, timeout: float, tracing: Tracing) -> None:
        super().__init__(upstreams, auth, timeout)
        self.tracing = tracing

    async def send(self, method: str, message: Any, response_parser: Callable[[bytes], Any], idempotent: bool,
                   metadata: list[tuple[str, str]]) -> Any:
        with self.tracing.client_span(method) as carried:
            return await super().send(method, message, response_parser, idempotent, [*metadata, *carried])
