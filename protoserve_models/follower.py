"""Each worker process follows the serving state and the repository on disk.

It polls the state's revision (cheap) and re-reads the documents when it moved, scans the
repository for new version directories every few seconds, and brings the worker's table of
loaded versions in line: versions wanted and not loaded are loaded in the background (they take
traffic only once READY), versions no longer wanted are dropped from the table. A call that already
holds a dropped version finishes on it; nothing fails in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from protoserve_models.repository import ModelRepository, VersionEntry, VersionState
from protoserve_models.serving_state import ModelServing, StateStore
from protoserve_runtime.errors import Unavailable

log = logging.getLogger(__name__)

NO_STATE = ModelServing()


class ServingFollower:
    def __init__(
        self,
        repository: ModelRepository,
        store: StateStore,
        publish: Callable[[dict[str, ModelServing]], None],
        on_unload: Callable[[str, str], None],
        state_poll_seconds: float = 0.2,
        repository_poll_seconds: float = 2.0,
    ) -> None:
        self.repository = repository
        self.store = store
        self.states: dict[str, ModelServing] = {}
        self.revision = -1
        self._publish = publish  # hands the routing to the data plane
        self._on_unload = on_unload
        self._state_poll = state_poll_seconds
        self._repository_poll = repository_poll_seconds
        self._lock = asyncio.Lock()
        self._store_down = False
        self._published: dict[str, ModelServing] = {}

    def state(self, model: str) -> ModelServing:
        return self.states.get(model, NO_STATE)

    async def refresh(self, force: bool = False) -> bool:
        """Re-read the serving state if its revision moved; True when it did."""
        try:
            if not force and await self.store.revision() == self.revision:
                return False
            self.revision, self.states = await self.store.read_all()
        except Unavailable as exc:
            if not self._store_down:
                log.warning("serving state unreadable; keeping the last one", extra={"reason": exc.message})
            self._store_down = True
            return False
        self._store_down = False
        self._publish_ready()
        return True

    def _waiting(self) -> bool:
        """Whether a default is held back until its version is ready here."""
        return any(state.default != self._published.get(model, state).default for model, state in self.states.items())

    def _publish_ready(self) -> None:
        """Hand the routing to the data plane with each default that is not ready here yet replaced
        by the default published before: a promotion switches once its version is loaded, and until
        then the calls stay on the old default (not on whatever version is newest)."""
        routing = {}
        for model, state in self.states.items():
            before = self._published.get(model)
            if state.default and before is not None and before.default and state.default != before.default:
                if state.default not in self.repository.ready_versions(model):
                    state = replace(state, default=before.default)
            routing[model] = state
        self._published = routing
        self._publish(routing)

    async def reconcile(self, retry_failed: Iterable[str] = ()) -> None:
        """Load what is wanted and not loaded, unload what is loaded and not wanted (retry_failed:
        models whose FAILED versions are tried again, on an explicit load)."""
        async with self._lock:
            on_disk = await asyncio.to_thread(self.repository.discover)
            retry = set(retry_failed)
            for model in sorted(set(on_disk) | set(self.repository.names())):
                await self._reconcile_model(model, on_disk.get(model, []), model in retry)
            self._publish_ready()  # defaults that were waiting for their version take over now

    async def _reconcile_model(self, model: str, on_disk: list[str], retry_failed: bool) -> None:
        # Loads first, unloads after: a switch from one version to another never leaves a moment
        # with neither loaded. The state may move while a version loads, so look again until
        # nothing wanted is missing.
        tried: set[str] = set()
        while True:
            entries = self._entries(model)
            missing = [
                v for v in sorted(self.state(model).wanted(on_disk), key=int)
                if v not in tried and _needs_load(entries.get(v), retry_failed)
            ]
            if not missing:
                break
            for version in missing:
                tried.add(version)
                await asyncio.to_thread(self.repository.load, model, version)
                self._publish_ready()  # a default waiting for this version switches to it now
        wanted = self.state(model).wanted(on_disk)
        entries = self._entries(model)
        for version in on_disk:
            entry = entries.get(version)
            if version in wanted:
                continue
            if entry is None:
                self.repository.add_available(model, version)
            elif entry.state in (VersionState.READY, VersionState.LOADING):
                self.repository.unload(model, version)
                self._on_unload(model, version)
        for version in set(entries) - set(on_disk):  # the directory is gone
            if entries[version].state is not VersionState.READY or version not in self.state(model).pinned():
                self.repository.forget(model, version)
                self._on_unload(model, version)

    def _entries(self, model: str) -> dict[str, VersionEntry]:
        return {e.version: e for e in self.repository.versions(model)} if model in self.repository.names() else {}

    async def run(self) -> None:
        """Follow until cancelled."""
        last_scan = time.monotonic()
        while True:
            await asyncio.sleep(self._state_poll)
            try:
                changed = await self.refresh()
                if not changed and self._waiting():
                    self._publish_ready()  # a version loaded by any path (LoadModel too) takes over
                due = self._repository_poll > 0 and time.monotonic() - last_scan >= self._repository_poll
                if changed or due:
                    last_scan = time.monotonic()
                    await self.reconcile()
            except Exception:  # never let one bad step end the following
                log.exception("following the serving state failed")


def _needs_load(entry: VersionEntry | None, retry_failed: bool) -> bool:
    if entry is None or entry.state is VersionState.UNLOADED:
        return True
    return entry.state is VersionState.FAILED and retry_failed
