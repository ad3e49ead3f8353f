"""Domain errors, free of any transport; the gRPC adapter maps them to status codes in one place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (e.g. ``rows[3].petal_width``) and what is wrong."""

    field: str
    description: str


class ProtoserveError(Exception):
    """Base of the errors a caller can act on; anything else is a bug (INTERNAL)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ProtoserveError):
    """The request is malformed; violations name the fields."""

    def __init__(self, message: str, violations: Sequence[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.violations = tuple(violations)

    @classmethod
    def for_field(cls, field: str, description: str) -> InvalidArgument:
        return cls(f"{field}: {description}", [FieldViolation(field, description)])


class NotFound(ProtoserveError):
    """A named thing (model, version, job, prediction) does not exist."""


class AlreadyExists(ProtoserveError):
    """The thing to create exists already."""


class FailedPrecondition(ProtoserveError):
    """The request is valid but the system is not in a state that allows it."""


class ResourceExhausted(ProtoserveError):
    """A limit or a queue is full; the caller may retry later or ask for less."""


class Unavailable(ProtoserveError):
    """A dependency or the service itself cannot answer now; retrying may succeed."""


class DeadlineExceeded(ProtoserveError):
    """The caller's deadline passed before the work was done."""


class Unauthenticated(ProtoserveError):
    """No valid credentials came with the request."""


class PermissionDenied(ProtoserveError):
    """The credentials are valid but lack the scope the call needs."""
