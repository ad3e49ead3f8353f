"""The transport-free training core of the service: TrainModel checks the request in full and
queues the run as a job (kind "train") on the job workers; GetTrainingRun reads it back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inference_svc.jobs.core import JobCore, check_idempotency_key
from protoserve_models.builtin.recipes import RECIPE_SPECS
from protoserve_models.card import ModelCard
from protoserve_models.jobs.record import JobRecord, JobState
from protoserve_models.training import data as datasets
from protoserve_models.training import refit
from protoserve_models.training.engine import Engine
from protoserve_models.training.feedback import count_examples
from protoserve_models.training.record import Mode, TrainingSpec, initial_run, timestamp
from protoserve_models.training.refit import REFIT
from protoserve_runtime.errors import FailedPrecondition, InvalidArgument, NotFound

KIND = "train"
PROGRESS_STEPS = 100  # a run's progress is kept as rows_done / rows_total of its job


@dataclass(frozen=True)
class TrainRequest:
    model: str
    recipe: str
    parameters: Mapping[str, Any]
    builtin: bool
    csv: bytes
    label_column: str
    feedback: bool
    mode: Mode
    idempotency_key: str


_STATES = {
    JobState.QUEUED: "TRAINING_RUN_STATE_QUEUED",
    JobState.RUNNING: "TRAINING_RUN_STATE_RUNNING",
    JobState.SUCCEEDED: "TRAINING_RUN_STATE_SUCCEEDED",
    JobState.FAILED: "TRAINING_RUN_STATE_FAILED",
    JobState.CANCELLED: "TRAINING_RUN_STATE_FAILED",
}


class TrainingCore:
    def __init__(self, jobs: JobCore, engine: Engine, examples_count: Any) -> None:
        self._jobs = jobs
        self._engine = engine
        self._examples_count = examples_count  # model -> labeled examples in its stream (sync)

    def _check(self, request: TrainRequest) -> TrainingSpec:
        """Everything that can be known before training; raises naming what is wrong."""
        check_idempotency_key(request.idempotency_key)
        card, version = self._engine.model_card(request.model)
        if not (request.builtin or request.csv or request.feedback):
            raise InvalidArgument.for_field("data", "choose at least one source: builtin, csv or feedback")
        name = self._engine.recipe_name(card, request.recipe)
        if name == REFIT:
            params, label_column, rows = self._check_refit(request, card, version)
        else:
            recipe = self._engine.recipe_for(card, name, dict(request.parameters))
            name, params, label_column = recipe.name, recipe.params, request.label_column or datasets.DEFAULT_LABEL_COLUMN
            rows = self._check_recipe_rows(request, card)
        if request.feedback:
            rows += int(self._examples_count(request.model))
        if rows == 0:
            raise InvalidArgument.for_field(
                "data", f"the chosen sources hold no rows: no labeled feedback for model {request.model} yet"
            )
        return TrainingSpec(
            run_id=uuid.uuid4().hex, model=request.model, recipe=name, params=params,
            builtin=request.builtin, csv=request.csv.decode("utf-8-sig") if request.csv else "", label_column=label_column,
            feedback=request.feedback, mode=request.mode, created=time.time(),
        )

    def _check_recipe_rows(self, request: TrainRequest, card: ModelCard) -> int:
        rows = 0
        if request.builtin:
            if request.model not in RECIPE_SPECS:
                raise InvalidArgument.for_field(
                    "data.builtin", f"model {request.model} has no built-in data (built-in models: {', '.join(RECIPE_SPECS)})"
                )
            rows += 1  # the built-in data is never empty
        if request.csv:
            part = datasets.csv_part(card, request.csv, request.label_column, self._engine.max_csv_bytes, self._engine.limits)
            rows += len(part.y)
        return rows

    def _check_refit(self, request: TrainRequest, card: ModelCard, version: str) -> tuple[dict[str, Any], str, int]:
        """The parameters, label column(s) and CSV rows of a refit of the default version."""
        if request.builtin:
            raise InvalidArgument.for_field(
                "data.builtin", f"the built-in data trains the built-in recipes; recipe {REFIT!r} learns from csv and feedback"
            )
        if not version:
            raise FailedPrecondition(f"model {request.model} has no version to train again")
        params = self._engine.refit_parameters(request.model, version, dict(request.parameters))
        labels = refit.label_columns(card, request.label_column)
        rows = 0
        if request.csv:
            rows += len(refit.csv_rows(card, request.csv, labels, self._engine.max_csv_bytes))
        return params, ",".join(labels), rows

    async def train(self, request: TrainRequest) -> str:
        spec = await asyncio.to_thread(self._check, request)
        fields = {
            "id": spec.run_id, "kind": KIND, "model": spec.model, "version": "", "state": "QUEUED",
            "rows_total": PROGRESS_STEPS, "rows_done": 0, "created": spec.created, "attempts": 0,
            "idem": request.idempotency_key, "page_size": 0, "pages": 0,
            "training": json.dumps(initial_run(spec)),
        }
        fingerprint = hashlib.sha256(f"{KIND}\0{spec.fingerprint_text()}".encode()).hexdigest()
        record = await self._jobs.enqueue(fields, spec.to_json().encode(), fingerprint)
        return record.job_id

    async def get(self, run_id: str) -> dict[str, Any]:
        if not run_id:
            raise InvalidArgument.for_field("run_id", "is required")
        try:
            record = await self._jobs.get(run_id)
        except NotFound:
            raise NotFound(f"training run {run_id!r} not found") from None
        if record.kind != KIND:
            raise NotFound(f"training run {run_id!r} not found (job {run_id} is a prediction job)")
        return run_of(record)


def run_of(record: JobRecord) -> dict[str, Any]:
    """The run as it is now: the stored run with the job's state, progress, error and times."""
    run: dict[str, Any] = json.loads(record.training) if record.training else {"run_id": record.job_id}
    run["state"] = _STATES[record.state]
    run["progress"] = 1.0 if record.state is JobState.SUCCEEDED else record.rows_done / (record.rows_total or 1)
    run["error"] = "cancelled" if record.state is JobState.CANCELLED else record.error
    if record.state is JobState.SUCCEEDED:
        run["error"] = ""
        run["version"] = record.version
    if record.started:
        run.setdefault("start_time", timestamp(record.started))
    if record.finished and record.state.final:
        run["finish_time"] = timestamp(record.finished)
    return run


def examples_counter(client: Any, stream_prefix: str) -> Any:
    return lambda model: count_examples(client, stream_prefix, model)
