"""The transport-free explain core: resolve the model, validate rows as Predict does, check the
cost, then predict and explain off the event loop with the model version's cached explainer."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from explain_svc.attributions import Method, RowAttributions
from explain_svc.methods import build_method
from explain_svc.settings import ExplainSettings
from protoserve_models.card import ModelCard
from protoserve_models.inputs import InputLimits, rows_to_inputs
from protoserve_models.model import LoadedModel, PredictionBatch
from protoserve_models.repository import ModelRepository, VersionState
from protoserve_models.serving_state import ServingTable
from protoserve_runtime.errors import FailedPrecondition, InvalidArgument, ProtoserveError, ResourceExhausted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowExplanation:
    explained: RowAttributions  # attributions cut to top_k, largest magnitude first
    omitted_count: int
    omitted_sum: float


@dataclass(frozen=True)
class ExplainResult:
    card: ModelCard
    method: Method
    predictions: PredictionBatch
    rows: list[RowExplanation]


def top_k(row: RowAttributions, k: int) -> RowExplanation:
    ranked = sorted(row.attributions, key=lambda a: abs(a.value), reverse=True)
    kept, rest = (ranked[:k], ranked[k:]) if k else (ranked, [])
    return RowExplanation(
        RowAttributions(row.label, row.base_value, row.output_value, kept), len(rest), float(sum(a.value for a in rest))
    )


def check_label(card: ModelCard, label: str) -> None:
    if not label:
        return
    if card.task != "classification":
        raise InvalidArgument.for_field("label", f"model {card.name!r} is a regressor and has no labels; leave it empty")
    if label not in card.labels:
        raise InvalidArgument.for_field(
            "label", f"{label!r} is not a label of model {card.name!r}; its labels are {', '.join(card.labels)}"
        )


class ExplainCore:
    def __init__(
        self, repository: ModelRepository, limits: InputLimits, settings: ExplainSettings, serving: ServingTable,
        executor: Executor | None = None,
    ) -> None:
        self.repository = repository
        self.limits = limits
        self.settings = settings
        self._executor = executor or ThreadPoolExecutor(max_workers=2, thread_name_prefix="explain")
        self._methods: dict[tuple[str, str], Method | ProtoserveError] = {}
        self._lock = threading.Lock()
        # The serving state (as the inference service follows it): a call naming no version
        # explains the model's default version, the one that answers its predictions.
        self.serving = serving

    def default_version(self, model: str) -> str | None:
        state = self.serving.get(model)
        return self.repository.default_version(model, state.default if state is not None else "")

    def drop_version(self, model: str, version: str) -> None:
        """Forget an unloaded version's explainer (a call holding it finishes on it)."""
        with self._lock:
            self._methods.pop((model, version), None)

    def method_for(self, model: LoadedModel) -> Method:
        """The model version's explainer, built on first use and kept (a failure is kept too)."""
        key = (model.name, model.version)
        with self._lock:
            method = self._methods.get(key)
            if method is None:
                method = self._build(model)
                self._methods[key] = method
        if isinstance(method, ProtoserveError):
            raise method
        return method

    def _build(self, model: LoadedModel) -> Method | ProtoserveError:
        try:
            method = build_method(model, self.settings)
            log.info("explainer built", extra={"model": model.name, "version": model.version, "method": method.name,
                                               "output_space": method.output_space})
            return method
        except ProtoserveError as exc:
            error: ProtoserveError = exc
        except Exception as exc:  # shap refuses some models; say so instead of failing every call
            log.exception("explainer could not be built", extra={"model": model.name, "version": model.version})
            error = FailedPrecondition(f"no explainer could be built: {exc}")
        return FailedPrecondition(f"model {model.name!r} version {model.version} cannot be explained: {error.message}")

    async def explain(
        self, model: str, version: str | None, rows: Sequence[Mapping[str, Any]], k: int = 0, label: str = ""
    ) -> ExplainResult:
        loaded = self.repository.get(model, version or self.default_version(model))
        inputs = rows_to_inputs(loaded.card, rows, self.limits)
        check_label(loaded.card, label)
        loop = asyncio.get_running_loop()
        method = await loop.run_in_executor(self._executor, self.method_for, loaded)
        cost, limit = method.cost(len(inputs)), self.settings.explain_max_cost
        if cost > limit:
            raise ResourceExhausted(
                f"explaining {len(inputs)} rows of {loaded.name!r} costs {cost:,} (rows {len(inputs)} x features "
                f"{method.features} x samples {method.samples}), over the limit PROTOSERVE_EXPLAIN_MAX_COST={limit:,}; "
                "send fewer rows"
            )
        predictions, explained = await loop.run_in_executor(self._executor, method.predict_and_explain, inputs, label)
        return ExplainResult(loaded.card, method, predictions, [top_k(row, k) for row in explained])

    def warm(self) -> None:
        """Build every ready version's explainer and run it once, so that the first caller does not
        wait for it (or for numba compiling shap's kernels)."""
        for name in self.repository.names():
            for entry in self.repository.versions(name):
                if entry.state is not VersionState.READY or entry.model is None:
                    continue
                try:
                    method = self.method_for(entry.model)
                    sample = _first_reference_row(entry.model.card)
                    if sample is not None:
                        method.predict_and_explain(rows_to_inputs(entry.model.card, [sample], self.limits), "")
                except ProtoserveError as exc:
                    log.warning("model cannot be explained", extra={"model": name, "version": entry.version,
                                                                     "reason": exc.message})
                except Exception as exc:  # a user's model may fail in any way: only its explanations fail
                    reason = FailedPrecondition(f"model {name} version {entry.version} cannot be explained: {exc}")
                    with self._lock:
                        self._methods[(name, entry.version)] = reason
                    log.error("model cannot be explained", extra={"model": name, "version": entry.version,
                                                                   "reason": str(exc)})

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _first_reference_row(card: ModelCard) -> dict[str, Any] | None:
    sample = card.reference_sample
    if not all(sample.get(name) for name in card.feature_names):
        return None
    return {name: sample[name][0] for name in card.feature_names}
