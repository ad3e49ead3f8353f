"""API keys with scopes: the key store, the one RPC -> scope table, and the gRPC key check.

Keys look like ``ps_<id>_<secret>``. Only a SHA-256 of each key is stored (the secret is 32 random
bytes, so a fast hash is enough: there is nothing to brute-force), in a JSON file in the data dir
(``<PROTOSERVE_DATA_DIR>/api_keys.json``), written atomically. Every service reads the same file and
re-reads it when it changes, so a revoked key stops working everywhere within a call or two, with
no Redis needed. Callers send ``authorization: Bearer <key>`` (HTTP header or gRPC metadata).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from protoserve_runtime import errors
from protoserve_runtime.grpc_errors import status_code_for
from protoserve_runtime.handler_wrappers import HandlerWrapper, before_each_call
from protoserve_runtime.settings import setting

log = logging.getLogger(__name__)

SCOPES = ("predict", "explain", "monitor", "admin")
ADMIN = "admin"  # holds every scope
OPEN = ""  # no key needed

# The one table from gRPC methods to the scope they need: the longest matching prefix wins;
# a method that matches nothing needs ``admin`` (deny by default).
SCOPE_BY_METHOD: dict[str, str] = {
    "/grpc.health.v1.Health/": OPEN,
    "/grpc.reflection.v1alpha.ServerReflection/": OPEN,
    "/grpc.reflection.v1.ServerReflection/": OPEN,
    "/protoserve.inference.v1.InferenceService/": "predict",
    "/protoserve.jobs.v1.JobService/": "predict",
    "/protoserve.explain.v1.ExplainService/": "explain",
    "/protoserve.monitoring.v1.MonitoringService/": "monitor",
    "/inference.GRPCInferenceService/": "predict",
    "/inference.GRPCInferenceService/ServerLive": OPEN,
    "/inference.GRPCInferenceService/ServerReady": OPEN,
    "/inference.GRPCInferenceService/RepositoryModelLoad": ADMIN,
    "/inference.GRPCInferenceService/RepositoryModelUnload": ADMIN,
}


@functools.lru_cache(maxsize=1024)  # the table is fixed: each method is looked up once
def scope_for(method: str) -> str:
    """The scope a full gRPC method name (``/package.Service/Method``) needs; OPEN for none."""
    best = None
    for prefix in SCOPE_BY_METHOD:
        if method.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return ADMIN if best is None else SCOPE_BY_METHOD[best]


@dataclass(frozen=True)
class AuthSettings:
    auth: bool = setting(False, "require API keys (on) or let every call in (off, for local use)")
    data_dir: Path = setting(Path(".protoserve"), "where `protoserve up` keeps data: embedded Redis, api_keys.json")

    @property
    def keys_file(self) -> Path:
        return self.data_dir / "api_keys.json"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    created: float

    def allows(self, scope: str) -> bool:
        return scope == OPEN or scope in self.scopes or ADMIN in self.scopes


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """The hashed keys in one JSON file; reloaded when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, ApiKey] = {}

    def _records(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        return list(data.get("keys", []))

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            self._by_hash = {
                r["hash"]: ApiKey(r["id"], r["name"], tuple(r["scopes"]), r["created"]) for r in self._records()
            }
            self._stamp = stamp

    def _write(self, records: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".api_keys.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"keys": records}, f, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def create(self, name: str, scopes: Sequence[str]) -> tuple[str, ApiKey]:
        """Store a new key and return it in clear (the only time it is shown) with its record."""
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise errors.InvalidArgument.for_field("scopes", f"choose from {', '.join(SCOPES)} (got {list(scopes)})")
        key_id = secrets.token_hex(4)
        key = f"ps_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(key_id, name, tuple(dict.fromkeys(scopes)), time.time())
        self._write([*self._records(), {**record.__dict__, "scopes": list(record.scopes), "hash": _hash(key)}])
        return key, record

    def list(self) -> list[ApiKey]:
        return [ApiKey(r["id"], r["name"], tuple(r["scopes"]), r["created"]) for r in self._records()]

    def revoke(self, key_id: str) -> bool:
        records = self._records()
        kept = [r for r in records if r["id"] != key_id]
        if len(kept) == len(records):
            return False
        self._write(kept)
        return True

    def lookup(self, key: str) -> ApiKey | None:
        self._refresh()
        return self._by_hash.get(_hash(key))


class Authenticator:
    """Decides whether a bearer token may call a method; transport-free (raises domain errors)."""

    def __init__(self, store: KeyStore | None) -> None:
        self.store = store  # None: auth is off

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def check(self, authorization: str | None, scope: str) -> ApiKey | None:
        if self.store is None or scope == OPEN:
            return None
        if not authorization:
            raise errors.Unauthenticated("an API key is required: send 'authorization: Bearer <key>'")
        kind, _, token = authorization.strip().partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise errors.Unauthenticated("the authorization must be 'Bearer <key>'")
        key = self.store.lookup(token.strip())
        if key is None:
            raise errors.Unauthenticated("the API key is not valid")
        if not key.allows(scope):
            raise errors.PermissionDenied(f"the API key {key.id!r} lacks the scope {scope!r}")
        return key


def authenticator(settings: AuthSettings) -> Authenticator:
    return Authenticator(KeyStore(settings.keys_file) if settings.auth else None)


def _metadata_value(metadata: Sequence[tuple[str, Any]] | None, name: str) -> str | None:
    for key, value in metadata or ():
        if key == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class KeyCheck:
    """Handler wrapper (handler_wrappers.py) that refuses calls without a key holding the
    method's scope, before the servicer runs (or reads a streamed request)."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def __call__(self, full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        scope = scope_for(full_method)
        if scope == OPEN:  # health, reflection: nothing to check
            return handler

        def check(request: Any, context: grpc.aio.ServicerContext) -> Awaitable[None] | None:
            try:
                self.auth.check(_metadata_value(context.invocation_metadata(), "authorization"), scope)
            except (errors.Unauthenticated, errors.PermissionDenied) as exc:
                return context.abort(status_code_for(exc), exc.message)
            return None

        return before_each_call(handler, check)


def handler_wrappers(settings: AuthSettings) -> list[HandlerWrapper]:
    """The wrappers a service passes to run_server: none when auth is off."""
    auth = authenticator(settings)
    if not auth.enabled:
        log.warning("AUTH IS OFF: every call is let in (set PROTOSERVE_AUTH=on to require API keys)")
        return []
    return [KeyCheck(auth)]


def describe_keys(keys: Mapping[str, ApiKey] | Sequence[ApiKey]) -> list[str]:
    items = keys.values() if isinstance(keys, Mapping) else keys
    return [
        f"{k.id}  {k.name:<20} {','.join(k.scopes):<28} {time.strftime('%Y-%m-%d %H:%M', time.gmtime(k.created))}"
        for k in items
    ]
