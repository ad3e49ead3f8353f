"""The one table from gRPC status codes to HTTP statuses, and the JSON error bodies.

Errors of a call carry the code, the message and field details (``google.rpc.BadRequest`` from
the rich status), so an HTTP caller learns as much as a gRPC caller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from protoserve_runtime.errors import FieldViolation

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


@dataclass
class HttpError(Exception):
    """An error the gateway answers itself or translated from a gRPC status."""

    status: int
    code: str  # a gRPC code name, so REST and gRPC callers see the same vocabulary
    message: str
    violations: Sequence[FieldViolation] = ()
    retry_after: int = 0  # seconds a refused caller should wait (Retry-After); 0: not said

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after)} if self.retry_after else {}

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "details": [{"field": v.field, "description": v.description} for v in self.violations],
        }

    @classmethod
    def bad_request(cls, message: str, field: str = "", status: int = 400) -> HttpError:
        return cls(status, "INVALID_ARGUMENT", message, [FieldViolation(field, message)] if field else [])


def _violations(error: grpc.aio.AioRpcError) -> list[FieldViolation]:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            found = []
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    found += [FieldViolation(v.field, v.description) for v in bad.field_violations]
            return found
    return []


# Answers a caller may retry later: they say when (the service's retry pushback, else a second).
RETRY_LATER = {429, 503}
DEFAULT_RETRY_AFTER_SECONDS = 1


def _retry_after(error: grpc.aio.AioRpcError, status: int) -> int:
    if status not in RETRY_LATER:
        return 0
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-retry-pushback-ms" and isinstance(value, str) and value.isdigit():
            return max(1, math.ceil(int(value) / 1000))
    return DEFAULT_RETRY_AFTER_SECONDS


def from_rpc_error(error: grpc.aio.AioRpcError) -> HttpError:
    code = error.code()
    status = HTTP_STATUS.get(code, 500)
    return HttpError(status, code.name, error.details() or code.name, _violations(error), _retry_after(error, status))
