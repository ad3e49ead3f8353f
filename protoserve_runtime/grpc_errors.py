"""The one mapping from domain errors to gRPC status codes, with field details.

Field violations travel as ``google.rpc.BadRequest`` in the rich status (grpcio-status), and the
message names the field too, so callers that only read the message still learn what was wrong.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import redis
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from protoserve_runtime import errors
from protoserve_runtime.handler_wrappers import before_each_call

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.ProtoserveError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}


def status_code_for(error: errors.ProtoserveError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]  # type: ignore[index]
    return grpc.StatusCode.UNKNOWN


# gRPC's retry pushback: how long a caller refused for load (queue full, nothing ready) should
# wait before it tries again; the gateway turns it into HTTP's Retry-After.
RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"
RETRY_PUSHBACK_MS = 1000
PUSHED_BACK = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)


def to_rpc_status(error: errors.ProtoserveError) -> grpc.Status:
    status = _rich_status(error)
    if status.code in PUSHED_BACK:
        return status._replace(  # type: ignore[attr-defined, no-any-return]
            trailing_metadata=(*status.trailing_metadata, (RETRY_PUSHBACK_KEY, str(RETRY_PUSHBACK_MS)))
        )
    return status


def _rich_status(error: errors.ProtoserveError) -> grpc.Status:
    code = status_code_for(error)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=error.message)
    if isinstance(error, errors.InvalidArgument) and error.violations:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in error.violations
                ]
            )
        )
        status.details.append(detail)
    return rpc_status.to_status(status)


F = TypeVar("F", bound=Callable[..., Any])

# Redis down or unreachable after the client's retries: the caller may retry later, it is no bug.
REDIS_OUTAGE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


async def _abort_redis_outage(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    log.warning("Redis unavailable in %s: %s", method, exc)
    context.set_trailing_metadata(((RETRY_PUSHBACK_KEY, str(RETRY_PUSHBACK_MS)),))
    await context.abort(grpc.StatusCode.UNAVAILABLE, "Redis is unavailable; retry later")


def translate_errors(method: F) -> F:
    """Wrap an async unary servicer method: domain errors become their status, bugs INTERNAL."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except errors.ProtoserveError as exc:
            await context.abort_with_status(to_rpc_status(exc))
        except (grpc.aio.AbortError, grpc.RpcError):
            raise
        except REDIS_OUTAGE as exc:
            await _abort_redis_outage(context, method.__name__, exc)
        except Exception:  # a bug: log it, answer INTERNAL, keep serving
            log.exception("unhandled error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the service log")

    return wrapper  # type: ignore[return-value]


def translate_stream_errors(method: F) -> F:
    """The same as translate_errors, for server-streaming methods (async generators)."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            async for item in method(self, request, context):
                yield item
        except errors.ProtoserveError as exc:
            await context.abort_with_status(to_rpc_status(exc))
        except (grpc.aio.AbortError, grpc.RpcError):
            raise
        except REDIS_OUTAGE as exc:
            await _abort_redis_outage(context, method.__name__, exc)
        except Exception:
            log.exception("unhandled error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the service log")

    return wrapper  # type: ignore[return-value]


class _Undecodable:
    """What the tolerant deserializer hands on for bytes that are not a valid request message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def tolerate_undecodable(full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """Handler wrapper (handler_wrappers.py) that answers INVALID_ARGUMENT to request bytes that
    do not parse (corrupt wire format, invalid UTF-8 in a string, nesting beyond the parser's depth
    limit); grpc.aio alone answers UNKNOWN.

    Installed innermost, so that authentication still runs first on such calls.
    """
    if handler.request_streaming or handler.request_deserializer is None:
        return handler
    parse = handler.request_deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # DecodeError and its kin: the caller's bytes, not a bug
            return _Undecodable(str(exc) or type(exc).__name__)

    def refuse_undecodable(request: Any, context: grpc.aio.ServicerContext) -> Awaitable[None] | None:
        if isinstance(request, _Undecodable):
            return context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request message does not parse: {request.reason}")
        return None

    return before_each_call(handler, refuse_undecodable, deserialize)
