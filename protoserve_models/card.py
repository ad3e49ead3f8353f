"""The model card: what a model version does, what it takes, how well it did (``card.json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Task = Literal["classification", "regression", "anomaly_detection", "clustering"]
FeatureKind = Literal["double", "integer", "boolean", "string", "categorical"]
InputFormat = Literal["array", "dataframe"]
TASKS: tuple[str, ...] = ("classification", "regression", "anomaly_detection", "clustering")
FEATURE_KINDS: tuple[str, ...] = ("double", "integer", "boolean", "string", "categorical")
INPUT_FORMATS: tuple[str, ...] = ("array", "dataframe")
NUMERIC_KINDS: tuple[str, ...] = ("double", "integer", "boolean")
# An anomaly detector answers label index 0 (predict gave +1) or 1 (predict gave -1).
ANOMALY_LABELS = ("inlier", "outlier")
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
    nullable: bool = False  # null (a missing value) is accepted
    categories: tuple[str, ...] = ()  # categorical: the categories seen in training
    dtype: str = ""  # the pandas dtype the model was fitted with; "" for a model fitted on numpy

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Feature:
        return cls(
            name=str(data["name"]),
            type=data["type"],
            description=str(data.get("description", "")),
            max_length=int(data.get("max_length", 0)),
            nullable=bool(data.get("nullable", False)),
            categories=tuple(str(c) for c in data.get("categories", ())),
            dtype=str(data.get("dtype", "")),
        )


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
    # "dataframe": the estimator was fitted on a pandas DataFrame (it has feature_names_in_) and
    # takes one, with the card's column names and dtypes; "array": a numpy array.
    input_format: InputFormat = "array"
    # The names of a regressor's outputs when it predicts several; empty: one output.
    outputs: tuple[str, ...] = ()
    # A classifier with predict_proba; without it, labels come from predict.
    probabilities: bool = True
    # The estimator has decision_function, reported as scores.
    decision_scores: bool = False
    # A value outside a categorical feature's categories is refused rather than passed through.
    strict_categories: bool = False

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs)

    @property
    def is_text(self) -> bool:
        """One string feature fed as a 1-D array of strings (a text pipeline)."""
        return self.input_format == "array" and len(self.inputs) == 1 and self.inputs[0].type == "string"

    @property
    def is_numeric(self) -> bool:
        return all(f.type in NUMERIC_KINDS for f in self.inputs)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        try:
            inputs = tuple(Feature.from_dict(f) for f in data["inputs"])
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
                input_format=data.get("input_format", "array"),
                outputs=tuple(str(x) for x in data.get("outputs", ())),
                probabilities=bool(data.get("probabilities", True)),
                decision_scores=bool(data.get("decision_scores", False)),
                strict_categories=bool(data.get("strict_categories", False)),
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
        if self.task not in TASKS:
            raise CardError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.input_format not in INPUT_FORMATS:
            raise CardError(f"input_format must be array or dataframe, not {self.input_format!r}")
        if not self.inputs:
            raise CardError("inputs: a model needs at least one input feature")
        names = self.feature_names
        if len(set(names)) != len(names):
            raise CardError("inputs: feature names must be unique")
        for feature in self.inputs:
            if feature.type not in FEATURE_KINDS:
                raise CardError(f"inputs.{feature.name}: type must be one of {', '.join(FEATURE_KINDS)}")
            if feature.type == "categorical" and not feature.categories:
                raise CardError(f"inputs.{feature.name}: a categorical feature lists its categories")
        self._check_answers()

    def _check_answers(self) -> None:
        if self.task == "classification" and len(self.labels) < 2:
            raise CardError("labels: a classifier needs at least two labels")
        if self.task == "anomaly_detection" and self.labels != ANOMALY_LABELS:
            raise CardError(f"labels: an anomaly detector's labels are {list(ANOMALY_LABELS)}")
        if self.task == "clustering" and (not self.labels or self.labels != tuple(str(i) for i in range(len(self.labels)))):
            raise CardError("labels: a clusterer's labels are its cluster ids, '0' to 'k-1'")
        if self.outputs and (self.task != "regression" or len(self.outputs) < 2 or len(set(self.outputs)) != len(self.outputs)):
            raise CardError("outputs: only a regressor with several outputs names them, each once")
