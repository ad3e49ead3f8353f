"""A training run as stored: the validated request (the job's input) and the run itself, a dict in
the protobuf JSON form of protoserve.models.v1.TrainingRun, kept on the job record while the run
goes and on the card of the version it made (``card.training["run"]``) for good."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Mode = Literal["AUTO", "MANUAL"]


@dataclass(frozen=True)
class TrainingSpec:
    run_id: str
    model: str
    recipe: str
    params: dict[str, Any]
    builtin: bool
    csv: str
    label_column: str
    feedback: bool
    mode: Mode
    created: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> TrainingSpec:
        return cls(**json.loads(raw))

    def fingerprint_text(self) -> str:
        """The request without its id and time: two equal requests under one idempotency key match."""
        data = asdict(self)
        del data["run_id"], data["created"]
        return json.dumps(data, sort_keys=True)


def timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def initial_run(spec: TrainingSpec) -> dict[str, Any]:
    return {
        "run_id": spec.run_id, "model": spec.model, "recipe": spec.recipe, "parameters": spec.params,
        "state": "TRAINING_RUN_STATE_QUEUED", "progress": 0.0, "create_time": timestamp(spec.created),
        "promotion": {"mode": f"PROMOTION_MODE_{spec.mode}"},
    }
