"""The model card: what a model version does, what it takes, how well it did (``card.json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Task = Literal["classification", "regression"]
FeatureKind = Literal["double", "string"]
CARD_FILE = "card.json"
MODEL_FILE = "model.skops"


class CardError(ValueError):
    """A card.json that cannot be used; the message says which entry is wrong."""


@dataclass(frozen=True)
class Feature:
    name: str
    type: FeatureKind
    description: str = ""
    max_length: int = 0  # for strings; 0 means the service-wide limit


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    task: Task
    description: str
    inputs: tuple[Feature, ...]
    labels: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    training_data: str = ""
    algorithm: str = ""
    deterministic: bool = True
    # Column-oriented rows drawn from the training data: drift reference and explanation background.
    reference_sample: dict[str, list[Any]] = field(default_factory=dict)
    # How the version was built (recipe name, parameters, data fingerprint), for the record.
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs)

    @property
    def is_text(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].type == "string"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        try:
            inputs = tuple(Feature(**f) for f in data["inputs"])
            card = cls(
                name=str(data["name"]),
                version=str(data["version"]),
                task=data["task"],
                description=str(data.get("description", "")),
                inputs=inputs,
                labels=tuple(str(x) for x in data.get("labels", ())),
                metrics={str(k): float(v) for k, v in data.get("metrics", {}).items()},
                training_data=str(data.get("training_data", "")),
                algorithm=str(data.get("algorithm", "")),
                deterministic=bool(data.get("deterministic", True)),
                reference_sample=dict(data.get("reference_sample", {})),
                training=dict(data.get("training", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CardError(f"malformed model card: {exc!r}") from exc
        card.check()
        return card

    @classmethod
    def read(cls, directory: Path) -> ModelCard:
        path = directory / CARD_FILE
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise CardError(f"cannot read {path}: {exc}") from exc

    def check(self) -> None:
        if self.task not in ("classification", "regression"):
            raise CardError(f"task must be classification or regression, not {self.task!r}")
        if not self.inputs:
            raise CardError("inputs: a model needs at least one input feature")
        names = self.feature_names
        if len(set(names)) != len(names):
            raise CardError("inputs: feature names must be unique")
        for feature in self.inputs:
            if feature.type not in ("double", "string"):
                raise CardError(f"inputs.{feature.name}: type must be double or string")
        kinds = {f.type for f in self.inputs}
        if "string" in kinds and not self.is_text:
            raise CardError("inputs: a text model takes exactly one string feature")
        if self.task == "classification" and len(self.labels) < 2:
            raise CardError("labels: a classifier needs at least two labels")
