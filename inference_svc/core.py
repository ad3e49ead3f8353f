"""The transport-free inference core (the data plane): every API adapter calls this.

It resolves the model version, validates inputs against its card, and runs the model off the
event loop. Adapters (gRPC, Open Inference Protocol) only convert messages to and from it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from inference_svc.batching import BatchSettings, ModelBatcher, Runner
from inference_svc.cache import PredictionCache
from inference_svc.events import new_prediction_ids
from inference_svc.shadow import ShadowRunner
from inference_svc.tensor_inputs import NamedTensor, check_requested, outputs_to_arrays, tensors_to_inputs
from protoserve_models.card import ModelCard
from protoserve_models.inputs import InputLimits, ServedInputs, check_rows
from protoserve_models.model import LoadedModel, PredictionBatch
from protoserve_models.repository import ModelRepository, VersionEntry, check_model_name
from protoserve_models.serving_state import ServingTable
from protoserve_runtime.errors import ProtoserveError

log = logging.getLogger(__name__)


class PredictionSink(Protocol):
    """Where every prediction and failed request is reported (inference_svc.events); never blocks."""

    def predictions(
        self, card: ModelCard, inputs: ServedInputs, outputs: PredictionBatch, ids: Sequence[str], latency_seconds: float
    ) -> None: ...

    def failure(self, model: str, version: str | None, error: ProtoserveError, latency_seconds: float) -> None: ...


BatcherFactory = Callable[[LoadedModel, Runner, BatchSettings], ModelBatcher]


@dataclass(frozen=True)
class PredictResult:
    card: ModelCard
    outputs: PredictionBatch
    prediction_ids: Sequence[str] = ()  # one per row, for feedback
    cached: bool = False  # answered from the prediction cache


@dataclass(frozen=True)
class TensorResult:
    card: ModelCard
    outputs: dict[str, np.ndarray]


@dataclass(frozen=True)
class ModelStatus:
    name: str
    card: ModelCard | None  # the default version's card, or the newest card when none is ready
    default_version: str | None
    versions: list[VersionEntry]


class InferenceCore:
    def __init__(
        self,
        repository: ModelRepository,
        limits: InputLimits,
        executor: Executor | None = None,
        batching: BatchSettings | None = None,
        events: PredictionSink | None = None,
        cache: PredictionCache | None = None,
        serving: ServingTable | None = None,
        batcher: BatcherFactory = ModelBatcher,  # inference_svc/traced.py's when tracing is on
    ) -> None:
        self.repository = repository
        self.limits = limits
        self.events = events
        self._executor = executor or ThreadPoolExecutor(max_workers=2, thread_name_prefix="predict")
        self.cache = cache  # None without Redis: predictions are not cached
        self._batching = batching or BatchSettings(max_batch_size=64, max_queue_delay=0.0, max_queue_size=256)
        self._batchers: dict[tuple[str, str], ModelBatcher] = {}
        self._new_batcher = batcher
        # How each model is served (default, weighted routes, shadow), replaced whole by the
        # lifecycle follower; empty: the newest ready version answers, as without the lifecycle.
        self.serving = serving or ServingTable()
        self.shadows = ShadowRunner(self)

    def resolve(self, model: str, version: str | None) -> LoadedModel:
        return self.repository.get(model, version or self.route(model))

    def route(self, model: str) -> str | None:
        """The version a call that names none goes to: drawn by weight from the routes, else the
        default; None (the newest ready version) when that version is not ready here."""
        state = self.serving.get(model)
        if state is None:
            return None
        chosen = state.default
        if state.routes:
            versions, weights = zip(*state.routes, strict=True)
            chosen = random.choices(versions, weights)[0]
        if chosen and chosen in self.repository.ready_versions(model):
            return chosen
        return self.default_version(model)

    def default_version(self, model: str) -> str | None:
        """The serving state's default when it is ready here, else the newest ready version."""
        state = self.serving.get(model)
        return self.repository.default_version(model, state.default if state is not None else "")

    async def predict_rows(
        self,
        model: str,
        version: str | None,
        rows: Sequence[Mapping[str, Any]],
        deadline: float | None = None,
        skip_cache: bool = False,
    ) -> PredictResult:
        started = time.perf_counter()
        loaded: LoadedModel | None = None
        try:
            loaded = self.resolve(model, version)
            inputs = check_rows(loaded.card, rows, self.limits)
        except ProtoserveError as exc:
            self._failed(model, loaded.version if loaded is not None else version, exc, started)
            raise
        if not version:
            self.shadows.start(loaded, lambda card: check_rows(card, rows, self.limits))
        return await self.predict_inputs(loaded, inputs, deadline, started, use_cache=True, skip_cache=skip_cache)

    async def predict_tensors(
        self,
        model: str,
        version: str | None,
        tensors: Sequence[NamedTensor],
        requested: Sequence[str] = (),
        deadline: float | None = None,
    ) -> TensorResult:
        """Predict from named tensors (the Open Inference Protocol's form), checked against the card;
        the requested outputs (all when none are named) come back as named arrays, in order."""
        started = time.perf_counter()
        loaded: LoadedModel | None = None
        try:
            loaded = self.resolve(model, version)
            names = check_requested(loaded.card, requested)
            inputs = tensors_to_inputs(loaded.card, tensors, self.limits)
        except ProtoserveError as exc:
            self._failed(model, loaded.version if loaded is not None else version, exc, started)
            raise
        if not version:
            self.shadows.start(loaded, lambda card: tensors_to_inputs(card, tensors, self.limits))
        result = await self.predict_inputs(loaded, inputs, deadline, started, with_ids=False)
        arrays = outputs_to_arrays(loaded.card, result.outputs)
        return TensorResult(loaded.card, {name: arrays[name] for name in names})

    async def predict_inputs(
        self,
        loaded: LoadedModel,
        inputs: ServedInputs,
        deadline: float | None = None,
        started: float | None = None,
        use_cache: bool = False,
        skip_cache: bool = False,
        with_ids: bool = True,
    ) -> PredictResult:
        """Run a model on inputs that were validated against its card, batched with other callers'
        (deadline: time.monotonic() after which the request is dropped unrun; started: perf_counter
        when the request arrived, for the latency its prediction events carry; use_cache: consult
        the prediction cache, as protoserve's own Predict does unless the caller set skip_cache;
        with_ids: the caller answers with prediction ids; events always carry them)."""
        started = time.perf_counter() if started is None else started
        batcher = self._batcher(loaded)
        try:
            if self.cache is None or not use_cache:
                outputs, cached = await batcher.submit(inputs, deadline), False
            else:
                outputs, cached = await self.cache.get_or_predict(
                    loaded, inputs, lambda: batcher.submit(inputs, deadline), skip_cache
                )
        except ProtoserveError as exc:
            self._failed(loaded.name, loaded.version, exc, started)
            raise
        ids = new_prediction_ids(len(outputs)) if with_ids or self.events is not None else ()
        if self.events is not None:
            self.events.predictions(loaded.card, inputs, outputs, ids, time.perf_counter() - started)
        return PredictResult(loaded.card, outputs, ids, cached)

    def _failed(self, model: str, version: str | None, error: ProtoserveError, started: float) -> None:
        if self.events is not None:
            self.events.failure(model, version, error, time.perf_counter() - started)

    def _batcher(self, loaded: LoadedModel) -> ModelBatcher:
        key = (loaded.name, loaded.version)
        batcher = self._batchers.get(key)
        if batcher is None or batcher.model is not loaded:  # first call, or the version was reloaded
            batcher = self._batchers[key] = self._new_batcher(loaded, self._run, self._batching)
        return batcher

    async def _run(self, loaded: LoadedModel, inputs: ServedInputs) -> PredictionBatch:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, loaded.predict, inputs)

    def list_models(self) -> list[ModelStatus]:
        return [self.model_status(name) for name in self.repository.names()]

    def model_status(self, name: str) -> ModelStatus:
        check_model_name(name)
        versions = self.repository.versions(name)
        default = self.default_version(name)
        cards = [v.card for v in versions if v.card is not None]
        card = next((v.card for v in versions if v.version == default), cards[-1] if cards else None)
        return ModelStatus(name, card, default, versions)

    def drop_version(self, name: str, version: str) -> None:
        """Forget an unloaded version's batcher so its estimator can be freed (queued calls finish)."""
        self._batchers.pop((name, version), None)

    def describe(self, model: str, version: str | None) -> tuple[ModelCard, list[VersionEntry]]:
        """The card of the version asked for (else the one that answers) and every version's state.
        A model none of whose versions is ready is still described: its newest card beside the
        versions' states, so that the reason it cannot answer is seen."""
        if version:
            return self.resolve(model, version).card, self.repository.versions(model)
        status = self.model_status(model)
        if status.card is None:
            self.resolve(model, None)  # raises, naming each version's state
        assert status.card is not None
        return status.card, status.versions

    def close(self) -> None:
        self._executor.shutdown(wait=True)
