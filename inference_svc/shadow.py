"""Shadow predictions: the shadow version predicts the same rows off the response path.

The caller's answer never waits for the shadow and never sees it; the shadow's predictions are
published as prediction events under its own version, so monitoring shows how it would have
done. At most ``max_pending`` shadow calls run at once per worker; more are skipped (and counted),
so a slow shadow cannot pile up work behind the live traffic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from protoserve_models.card import ModelCard
from protoserve_models.inputs import ServedInputs
from protoserve_models.model import LoadedModel
from protoserve_models.repository import ModelRepository
from protoserve_models.serving_state import ServingTable
from protoserve_runtime.errors import ProtoserveError

log = logging.getLogger(__name__)

InputsFor = Callable[[ModelCard], ServedInputs]  # the call's rows, checked against the shadow's card


class ShadowHost(Protocol):
    """What a shadow needs of the inference core: the routing, the models, and its predict path."""

    serving: ServingTable
    repository: ModelRepository

    async def predict_inputs(self, loaded: LoadedModel, inputs: ServedInputs) -> Any: ...


class ShadowRunner:
    def __init__(self, core: ShadowHost, max_pending: int = 256) -> None:
        self._core = core
        self._max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()
        self.skipped = 0

    def start(self, answering: LoadedModel, inputs_for: InputsFor) -> None:
        """Start the shadow of a call answered by `answering`, if its model has a ready shadow."""
        state = self._core.serving.get(answering.name)
        if state is None or not state.shadow or state.shadow == answering.version:
            return
        if state.shadow not in self._core.repository.ready_versions(answering.name):
            return
        if len(self._tasks) >= self._max_pending:
            self.skipped += 1
            return
        try:
            shadow = self._core.repository.get(answering.name, state.shadow)
        except ProtoserveError:  # unloaded a moment ago
            return
        task = asyncio.create_task(self._run(shadow, inputs_for))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, shadow: LoadedModel, inputs_for: InputsFor) -> None:
        try:
            await self._core.predict_inputs(shadow, inputs_for(shadow.card))
        except ProtoserveError as exc:  # reported as a failure event of the shadow version
            log.debug("shadow prediction failed", extra={"model": shadow.name, "version": shadow.version, "reason": exc.message})
        except Exception:
            log.exception("shadow prediction failed", extra={"model": shadow.name, "version": shadow.version})
