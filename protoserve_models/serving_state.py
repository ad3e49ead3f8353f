"""How each model is served, shared by every replica and worker process through Redis.

Per model one JSON document at ``<prefix>:serving:<model>``: the default version, the weighted
routes, the shadow version, the version policy, and the versions loaded or unloaded by hand.
Every write bumps ``<prefix>:serving:revision`` in the same MULTI/EXEC (optimistic WATCH on the
model's key), so a replica polls one small counter and re-reads the documents only when it moved.

The mutations are pure functions of a ModelServing (validated by the caller before they run), so
the async service and the sync training worker share them. For the job worker process:
``promote_version(client, prefix, model, version)`` and ``default_version(client, prefix, model)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol

import redis
import redis.asyncio

from protoserve_runtime.errors import Unavailable

PolicyKind = Literal["all", "latest", "specific"]


@dataclass(frozen=True)
class Policy:
    """Which versions a replica keeps loaded. The default, "all", is what the service always did."""

    kind: PolicyKind = "all"
    count: int = 0  # for "latest"
    versions: tuple[str, ...] = ()  # for "specific"

    def select(self, on_disk: Sequence[str]) -> list[str]:
        """The versions of on_disk (sorted oldest first) the policy takes in."""
        if self.kind == "latest":
            return list(on_disk[-self.count :])
        if self.kind == "specific":
            return [v for v in on_disk if v in self.versions]
        return list(on_disk)


@dataclass(frozen=True)
class ModelServing:
    default: str = ""  # "" = the newest loaded version
    routes: tuple[tuple[str, int], ...] = ()  # (version, weight); empty = all to the default
    shadow: str = ""
    policy: Policy = field(default_factory=Policy)
    loaded: tuple[str, ...] = ()  # loaded by hand beyond the policy
    unloaded: tuple[str, ...] = ()  # unloaded by hand
    model_unloaded: bool = False  # the Open Inference Protocol's RepositoryModelUnload: nothing loaded

    def pinned(self) -> set[str]:
        """Versions the routing points at: they must stay loaded."""
        return {v for v in (self.default, self.shadow, *(r[0] for r in self.routes)) if v}

    def wanted(self, on_disk: Sequence[str]) -> set[str]:
        """The versions a replica should hold in memory, of those on disk."""
        if self.model_unloaded:
            return set()
        chosen = set(self.policy.select(on_disk)) | set(self.loaded) | self.pinned()
        return (chosen - set(self.unloaded)) & set(on_disk)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> ModelServing:
        if not raw:
            return cls()
        data: dict[str, Any] = json.loads(raw)
        policy = data.get("policy") or {}
        return cls(
            default=str(data.get("default", "")),
            routes=tuple((str(v), int(w)) for v, w in data.get("routes", ())),
            shadow=str(data.get("shadow", "")),
            policy=Policy(policy.get("kind", "all"), int(policy.get("count", 0)), tuple(policy.get("versions", ()))),
            loaded=tuple(data.get("loaded", ())),
            unloaded=tuple(data.get("unloaded", ())),
            model_unloaded=bool(data.get("model_unloaded", False)),
        )


# --- the mutations (pure; the RPC layer validates their arguments first) ---------------------


class ServingTable:
    """How each model is served right now in this process: the follower replaces it whole, the data
    plane reads it per call (a dict swap, so a reader never sees half an update)."""

    def __init__(self) -> None:
        self._states: dict[str, ModelServing] = {}

    def get(self, model: str) -> ModelServing | None:
        return self._states.get(model)

    def replace(self, states: dict[str, ModelServing]) -> None:
        self._states = states


def _without(items: Iterable[str], version: str) -> tuple[str, ...]:
    return tuple(v for v in items if v != version)


def promoted(state: ModelServing, version: str) -> ModelServing:
    return replace(state, default=version, unloaded=_without(state.unloaded, version), model_unloaded=False)


def with_traffic(state: ModelServing, routes: Sequence[tuple[str, int]], shadow: str) -> ModelServing:
    taken = {v for v, _ in routes} | ({shadow} if shadow else set())
    return replace(state, routes=tuple(routes), shadow=shadow, unloaded=tuple(v for v in state.unloaded if v not in taken))


def with_policy(state: ModelServing, policy: Policy) -> ModelServing:
    """A new policy replaces the loads and unloads made by hand."""
    return replace(state, policy=policy, loaded=(), unloaded=(), model_unloaded=False)


def with_loaded(state: ModelServing, version: str) -> ModelServing:
    loaded = state.loaded if version in state.loaded else (*state.loaded, version)
    return replace(state, loaded=loaded, unloaded=_without(state.unloaded, version), model_unloaded=False)


def with_unloaded(state: ModelServing, version: str) -> ModelServing:
    unloaded = state.unloaded if version in state.unloaded else (*state.unloaded, version)
    return replace(state, loaded=_without(state.loaded, version), unloaded=unloaded)


def with_model_loaded(state: ModelServing) -> ModelServing:
    return replace(state, unloaded=(), model_unloaded=False)


def with_model_unloaded(state: ModelServing) -> ModelServing:
    return replace(state, routes=(), shadow="", default="", loaded=(), model_unloaded=True)


# --- keys ----------------------------------------------------------------------------------


def model_key(prefix: str, model: str) -> str:
    return f"{prefix}:serving:{model}"


def revision_key(prefix: str) -> str:
    return f"{prefix}:serving:revision"


def models_key(prefix: str) -> str:
    """A set of the model names that have a document, so a replica reads them all in one go."""
    return f"{prefix}:serving:models"


Change = Callable[[ModelServing], ModelServing]


class StateStore(Protocol):
    """Where the serving state lives: Redis (ServingStateStore) or, without Redis, a file shared by
    the workers of one replica (local_state.LocalStateStore)."""

    shared: bool

    async def revision(self) -> int: ...

    async def read_all(self) -> tuple[int, dict[str, ModelServing]]: ...

    async def update(self, model: str, change: Change) -> tuple[ModelServing, ModelServing]: ...

    async def close(self) -> None: ...


# --- sync (the job worker process) ----------------------------------------------------------


def read_sync(client: redis.Redis, prefix: str, model: str) -> ModelServing:
    return ModelServing.from_json(client.get(model_key(prefix, model)))  # type: ignore[arg-type]


def update_sync(client: redis.Redis, prefix: str, model: str, change: Change) -> tuple[ModelServing, ModelServing]:
    """Apply change atomically; (before, after)."""
    key = model_key(prefix, model)
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                before = ModelServing.from_json(pipe.get(key))  # type: ignore[arg-type]
                after = change(before)
                pipe.multi()
                pipe.set(key, after.to_json())
                pipe.sadd(models_key(prefix), model)
                pipe.incr(revision_key(prefix))
                pipe.execute()
                return before, after
            except redis.WatchError:
                continue


def default_version(client: redis.Redis, prefix: str, model: str) -> str:
    """The model's default version in the serving state; "" when none was set (the newest loaded
    version answers then)."""
    return read_sync(client, prefix, model).default


def promote_version(client: redis.Redis, prefix: str, model: str, version: str) -> str:
    """Make version the default on every replica (they load it if needed and switch once it is
    ready); returns the previous default ("" when none was set)."""
    before, _ = update_sync(client, prefix, model, lambda state: promoted(state, version))
    return before.default


# --- async (the inference service) ----------------------------------------------------------


@dataclass
class ServingStateStore:
    """The serving state in Redis; an unreachable Redis is Unavailable (the caller may retry)."""

    client: redis.asyncio.Redis
    prefix: str
    shared = True  # reaches every replica

    async def revision(self) -> int:
        try:
            raw = await self.client.get(revision_key(self.prefix))
        except (redis.RedisError, OSError) as exc:
            raise _unreachable(exc) from exc
        return int(raw) if raw else 0

    async def read_all(self) -> tuple[int, dict[str, ModelServing]]:
        """The revision and every model's document, read in one transaction."""
        try:
            members = await self.client.smembers(models_key(self.prefix))
            names = sorted(n.decode() if isinstance(n, bytes) else str(n) for n in members)
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.get(revision_key(self.prefix))
                for name in names:
                    pipe.get(model_key(self.prefix, name))
                raw = await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise _unreachable(exc) from exc
        return int(raw[0] or 0), {name: ModelServing.from_json(doc) for name, doc in zip(names, raw[1:], strict=True)}

    async def update(self, model: str, change: Change) -> tuple[ModelServing, ModelServing]:
        """Apply change atomically; (before, after). change may raise to refuse: nothing is written."""
        key = model_key(self.prefix, model)
        try:
            async with self.client.pipeline() as pipe:
                while True:
                    try:
                        await pipe.watch(key)
                        before = ModelServing.from_json(await pipe.get(key))
                        after = change(before)
                        pipe.multi()
                        pipe.set(key, after.to_json())
                        pipe.sadd(models_key(self.prefix), model)
                        pipe.incr(revision_key(self.prefix))
                        await pipe.execute()
                        return before, after
                    except redis.WatchError:
                        continue
        except (redis.RedisError, OSError) as exc:
            raise _unreachable(exc) from exc

    async def close(self) -> None:
        await self.client.aclose()


def _unreachable(exc: Exception) -> Unavailable:
    return Unavailable(f"the serving state in Redis is unreachable ({exc}); nothing was changed, retry later")
