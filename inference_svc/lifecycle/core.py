"""The transport-free core of ModelService's serving side: versions, loads, routes, promotion.

Every change is validated first, then written to the serving state in one atomic update (checks
that depend on the state itself run inside it), so bad input never changes anything. The worker
that took the call then applies the new state at once and answers; the other workers and
replicas follow within a poll (follower.py).

The training run that made a version is read from its card: ``card.training["run"]``, the
TrainingRun message in protobuf JSON form (``json_format.MessageToDict(run,
preserving_proto_field_name=True)``), written there by the training side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inference_svc.core import InferenceCore
from protoserve_models import serving_state as st
from protoserve_models.card import CardError, ModelCard
from protoserve_models.follower import ServingFollower
from protoserve_models.repository import VersionState, check_model_name, check_version
from protoserve_models.version_states import NOT_LOADED, STATE_NAMES
from protoserve_runtime.errors import FailedPrecondition, InvalidArgument, NotFound

NEEDS_REDIS = (
    "the model lifecycle needs the Redis every replica shares: set PROTOSERVE_REDIS_URL (or REDIS_URL) "
    "on the inference service"
)


@dataclass(frozen=True)
class VersionInfo:
    version: str
    state: str  # available, loading, ready, failed
    is_default: bool
    traffic_share: float
    shadow: bool
    metrics: dict[str, float]
    training_run: dict[str, Any] | None  # the TrainingRun (protobuf JSON) on the card, if any
    error: str


@dataclass(frozen=True)
class ModelVersions:
    model: str
    default_version: str
    policy: st.Policy
    routes: tuple[tuple[str, int], ...]
    shadow_version: str
    versions: list[VersionInfo]  # newest first


class LifecycleCore:
    def __init__(self, inference: InferenceCore, follower: ServingFollower) -> None:
        self.inference = inference
        self.follower = follower
        self.repository = inference.repository

    # --- reads -------------------------------------------------------------------------------

    def _on_disk(self, model: str) -> list[str]:
        versions = self.repository.discover().get(check_model_name(model))
        if not versions:
            raise NotFound(f"model {model!r} is not in the repository")
        return versions

    def _version_on_disk(self, model: str, version: str) -> str:
        if check_version(version) not in self._on_disk(model):
            raise NotFound(f"model {model!r} has no version {version!r} in the repository")
        return version

    def _newest_ready(self, model: str) -> str:
        """The default when none was promoted; "" while this worker has not seen the model yet."""
        return (self.inference.default_version(model) or "") if model in self.repository.names() else ""

    def _default(self, model: str, state: st.ModelServing) -> str:
        return state.default or self._newest_ready(model)

    def list_versions(self, model: str) -> ModelVersions:
        on_disk = self._on_disk(model)
        state = self.follower.state(model)
        entries = {e.version: e for e in self.repository.versions(model)} if model in self.repository.names() else {}
        default = self._default(model, state)
        total = sum(w for _, w in state.routes)
        shares = {v: w / total for v, w in state.routes} if total else {default: 1.0}
        versions = []
        for version in reversed(on_disk):
            entry = entries.get(version)
            card = entry.card if entry is not None and entry.card is not None else _card_on_disk(self, model, version)
            run = (card.training.get("run") if card is not None else None) or None
            versions.append(VersionInfo(
                version=version,
                state=(STATE_NAMES[entry.state] if entry is not None else NOT_LOADED).lifecycle,
                is_default=version == default,
                traffic_share=shares.get(version, 0.0),
                shadow=version == state.shadow,
                metrics=dict(card.metrics) if card is not None else {},
                training_run=run if isinstance(run, dict) else None,
                error=entry.reason if entry is not None and entry.state is VersionState.FAILED else "",
            ))
        return ModelVersions(model, default, state.policy, state.routes, state.shadow, versions)

    def version_info(self, model: str, version: str) -> VersionInfo:
        return next(v for v in self.list_versions(model).versions if v.version == version)

    # --- changes -----------------------------------------------------------------------------

    def _check_shared(self) -> None:
        if not self.follower.store.shared:
            raise FailedPrecondition(NEEDS_REDIS)

    async def _apply(self, retry_failed: Sequence[str] = ()) -> None:
        """Carry the new state out on this worker before answering."""
        await self.follower.refresh(force=True)
        await self.follower.reconcile(retry_failed)

    async def load_version(self, model: str, version: str) -> VersionInfo:
        self._check_shared()
        self._version_on_disk(model, version)
        await self.follower.store.update(model, lambda s: st.with_loaded(s, version))
        await self._apply(retry_failed=[model])
        return self.version_info(model, version)

    async def unload_version(self, model: str, version: str) -> None:
        self._check_shared()
        self._version_on_disk(model, version)
        newest_ready = self._newest_ready(model)

        def unload(state: st.ModelServing) -> st.ModelServing:
            if version in (v for v, _ in state.routes):
                raise FailedPrecondition(
                    f"version {version} of {model!r} has traffic; take it out of the routes first (SetTraffic)"
                )
            if version == state.shadow:
                raise FailedPrecondition(
                    f"version {version} of {model!r} is the shadow version; clear the shadow first (SetTraffic)"
                )
            if version == (state.default or newest_ready):
                raise FailedPrecondition(
                    f"version {version} is the default version of {model!r}; "
                    "make another version the default first (PromoteVersion)"
                )
            return st.with_unloaded(state, version)

        await self.follower.store.update(model, unload)
        await self._apply()

    async def promote(self, model: str, version: str) -> tuple[str, str]:
        """(previous default, new default)."""
        self._check_shared()
        self._version_on_disk(model, version)
        entry = next((e for e in self.repository.versions(model) if e.version == version), None)
        if entry is not None and entry.state is VersionState.FAILED:
            raise FailedPrecondition(
                f"version {version} of {model!r} failed to load ({entry.reason}); fix it and LoadModel it first"
            )
        previous = self._default(model, self.follower.state(model))
        before, _ = await self.follower.store.update(model, lambda s: st.promoted(s, version))
        await self._apply()
        return before.default or previous, version

    async def set_traffic(
        self, model: str, routes: Sequence[tuple[str, int]], shadow: str
    ) -> tuple[tuple[tuple[str, int], ...], str]:
        self._check_shared()
        on_disk = self._on_disk(model)
        seen: set[str] = set()
        for i, (version, weight) in enumerate(routes):
            field = f"routes[{i}]"
            _check_in_repository(model, version, on_disk, f"{field}.version")
            if version in seen:
                raise InvalidArgument.for_field(f"{field}.version", f"version {version} is listed twice")
            seen.add(version)
            if weight < 1:
                raise InvalidArgument.for_field(f"{field}.weight", "a route's weight must be at least 1")
        if shadow:
            _check_in_repository(model, shadow, on_disk, "shadow_version")
        _, after = await self.follower.store.update(model, lambda s: st.with_traffic(s, routes, shadow))
        await self._apply()
        return after.routes, after.shadow

    async def set_policy(
        self, model: str, kind: str | None, count: int = 0, versions: Sequence[str] = ()
    ) -> tuple[st.Policy, list[str]]:
        """kind None: back to the default policy (every version)."""
        self._check_shared()
        on_disk = self._on_disk(model)
        if kind == "latest" and count < 1:
            raise InvalidArgument.for_field("policy.latest.count", "keep at least the newest version (count >= 1)")
        if kind == "specific":
            if not versions:
                raise InvalidArgument.for_field("policy.specific.versions", "name at least one version")
            for i, version in enumerate(versions):
                check_version(version, f"policy.specific.versions[{i}]")
        policy = st.Policy("all") if kind in (None, "all") else st.Policy(kind, count, tuple(versions))  # type: ignore[arg-type]
        _, after = await self.follower.store.update(model, lambda s: st.with_policy(s, policy))
        await self._apply()
        return after.policy, sorted(after.wanted(on_disk), key=int, reverse=True)

    # --- the Open Inference Protocol's whole-model load and unload (any store) -----------------

    async def load_model(self, model: str) -> None:
        self._on_disk(model)
        await self.follower.store.update(model, st.with_model_loaded)
        await self._apply(retry_failed=[model])

    async def unload_model(self, model: str) -> None:
        check_model_name(model)
        if model not in self.repository.names():
            raise NotFound(f"model {model!r} not found")
        await self.follower.store.update(model, st.with_model_unloaded)
        await self._apply()


def _check_in_repository(model: str, version: str, on_disk: Sequence[str], field: str) -> None:
    check_version(version, field)
    if version not in on_disk:
        raise InvalidArgument.for_field(field, f"model {model!r} has no version {version} in the repository")


def _card_on_disk(lifecycle: LifecycleCore, model: str, version: str) -> ModelCard | None:
    try:
        return ModelCard.read(lifecycle.repository.root / model / version)
    except CardError:
        return None
