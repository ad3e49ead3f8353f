"""The transport-free inference core (the data plane): every API adapter calls this.

It resolves the model version, validates inputs against its card, and runs the model off the
event loop. Adapters (gRPC, Open Inference Protocol) only convert messages to and from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference_svc.cache import PredictionCache
from inference_svc.card import ModelCard
from inference_svc.inputs import InputLimits, rows_to_inputs
from inference_svc.model import LoadedModel, PredictionBatch
from inference_svc.repository import ModelRepository, VersionEntry, check_model_name


@dataclass(frozen=True)
class PredictResult:
    card: ModelCard
    outputs: PredictionBatch
    cached: bool = False  # answered from the prediction cache


@dataclass(frozen=True)
class ModelStatus:
    name: str
    card: ModelCard | None  # the default version's card, or the newest card when none is ready
    default_version: str | None
    versions: list[VersionEntry]


class InferenceCore:
    def __init__(self, repository: ModelRepository, limits: InputLimits, executor: Executor | None = None) -> None:
        self.repository = repository
        self.limits = limits
        self._executor = executor or ThreadPoolExecutor(max_workers=2, thread_name_prefix="predict")
        self.cache: PredictionCache | None = None  # set by the composition root when Redis is configured

    def resolve(self, model: str, version: str | None) -> LoadedModel:
        return self.repository.get(model, version or None)

    async def predict_rows(
        self, model: str, version: str | None, rows: Sequence[Mapping[str, Any]], skip_cache: bool = False
    ) -> PredictResult:
        loaded = self.resolve(model, version)
        inputs = rows_to_inputs(loaded.card, rows, self.limits)
        if self.cache is None:
            return await self.predict_inputs(loaded, inputs)

        async def predict() -> PredictionBatch:
            return (await self.predict_inputs(loaded, inputs)).outputs

        outputs, cached = await self.cache.get_or_predict(loaded, inputs, predict, skip_cache)
        return PredictResult(loaded.card, outputs, cached)

    async def predict_inputs(self, loaded: LoadedModel, inputs: np.ndarray) -> PredictResult:
        """Run a model on inputs that were validated against its card."""
        loop = asyncio.get_running_loop()
        outputs = await loop.run_in_executor(self._executor, loaded.predict, inputs)
        return PredictResult(loaded.card, outputs)

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
