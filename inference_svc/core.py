"""The transport-free inference core (the data plane): every API adapter calls this.

It resolves the model version, validates inputs against its card, and runs the model off the
event loop. Adapters (gRPC, Open Inference Protocol) only convert messages to and from it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from inference_svc.card import ModelCard
from inference_svc.events import new_prediction_ids
from inference_svc.inputs import InputLimits, rows_to_inputs
from inference_svc.model import LoadedModel, PredictionBatch
from inference_svc.repository import ModelRepository, VersionEntry, check_model_name
from protoserve_runtime.errors import ProtoserveError


class PredictionSink(Protocol):
    """Where every prediction and failed request is reported (inference_svc.events); never blocks."""

    def predictions(
        self, card: ModelCard, inputs: np.ndarray, outputs: PredictionBatch, ids: Sequence[str], latency_seconds: float
    ) -> None: ...

    def failure(self, model: str, version: str | None, error: ProtoserveError, latency_seconds: float) -> None: ...


@dataclass(frozen=True)
class PredictResult:
    card: ModelCard
    outputs: PredictionBatch
    prediction_ids: Sequence[str] = ()  # one per row, for feedback


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
        events: PredictionSink | None = None,
    ) -> None:
        self.repository = repository
        self.limits = limits
        self.events = events
        self._executor = executor or ThreadPoolExecutor(max_workers=2, thread_name_prefix="predict")

    def resolve(self, model: str, version: str | None) -> LoadedModel:
        return self.repository.get(model, version or None)

    async def predict_rows(self, model: str, version: str | None, rows: Sequence[Mapping[str, Any]]) -> PredictResult:
        started = time.perf_counter()
        loaded: LoadedModel | None = None
        try:
            loaded = self.resolve(model, version)
            inputs = rows_to_inputs(loaded.card, rows, self.limits)
        except ProtoserveError as exc:
            if self.events is not None:
                answering = loaded.version if loaded is not None else version
                self.events.failure(model, answering, exc, time.perf_counter() - started)
            raise
        return await self.predict_inputs(loaded, inputs, started)

    async def predict_inputs(self, loaded: LoadedModel, inputs: np.ndarray, started: float | None = None) -> PredictResult:
        """Run a model on inputs that were validated against its card (started: perf_counter at arrival)."""
        started = time.perf_counter() if started is None else started
        loop = asyncio.get_running_loop()
        outputs = await loop.run_in_executor(self._executor, loaded.predict, inputs)
        ids = new_prediction_ids(len(outputs))
        if self.events is not None:
            self.events.predictions(loaded.card, inputs, outputs, ids, time.perf_counter() - started)
        return PredictResult(loaded.card, outputs, ids)

    def list_models(self) -> list[ModelStatus]:
        return [self.model_status(name) for name in self.repository.names()]

    def model_status(self, name: str) -> ModelStatus:
        check_model_name(name)
        versions = self.repository.versions(name)
        default = self.repository.default_version(name)
        cards = [v.card for v in versions if v.card is not None]
        card = next((v.card for v in versions if v.version == default), cards[-1] if cards else None)
        return ModelStatus(name, card, default, versions)

    def describe(self, model: str, version: str | None) -> tuple[ModelCard, list[VersionEntry]]:
        loaded = self.resolve(model, version)
        return loaded.card, self.repository.versions(model)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
