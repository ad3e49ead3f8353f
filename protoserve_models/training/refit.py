"""Training a user's model again ("refit"): the default version's own estimator -- its pipeline,
its hyperparameters, anything a parameter override changes -- with every fitted state cleared
(scikit-learn's ``clone``), fitted on new rows.

A user's model has no recipe: protoserve never saw the code that built it, only the fitted
estimator. Refitting that estimator is what its users do in their notebook when new data arrives,
and it keeps whatever preprocessing the pipeline holds. Rows travel in their JSON form (a dict of
feature to value, None for a missing value), the same as Predict rows, and reach the estimator
shaped as it was fitted (protoserve_models.inputs.rows_to_inputs), with two differences that new
training data needs: every column may hold missing values (the pipeline's own imputer decides),
and categorical columns take categories the previous version never saw.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from protoserve_models.card import Feature, ModelCard
from protoserve_models.inputs import InputLimits, ModelInputs, rows_to_inputs
from protoserve_models.jobs.payload import csv_cell
from protoserve_models.signature import infer_signature
from protoserve_models.training.recipes import coerce_parameter
from protoserve_runtime.errors import InvalidArgument, ResourceExhausted

REFIT = "refit"
SUPERVISED = ("classification", "regression")
CSV_FIELD = "data.csv"

Row = dict[str, Any]


@dataclass(frozen=True)
class Rows:
    """Rows in JSON form with their true answers (a label, a value, a list of values for several
    outputs; None for a model that learns without answers), and where each came from."""

    rows: list[Row]
    truths: list[Any]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, indices: Sequence[int] | np.ndarray) -> Rows:
        return Rows([self.rows[i] for i in indices], [self.truths[i] for i in indices], [self.sources[i] for i in indices])

    @staticmethod
    def join(parts: Sequence[Rows]) -> Rows:
        return Rows([r for p in parts for r in p.rows], [t for p in parts for t in p.truths],
                    [s for p in parts for s in p.sources])

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for source in self.sources:
            counted[source] = counted.get(source, 0) + 1
        return counted

    def fingerprint(self) -> str:
        """SHA-256 of every row and answer as sorted JSON lines: the same rows, the same print."""
        lines = sorted(json.dumps([row, truth], sort_keys=True, ensure_ascii=False) for row, truth in zip(self.rows, self.truths))
        digest = hashlib.sha256()
        for line in lines:
            digest.update(line.encode())
            digest.update(b"\n")
        return digest.hexdigest()


def label_columns(card: ModelCard, label_column: str) -> list[str]:
    """The CSV columns that hold the true answer: as asked (comma-separated for several outputs),
    else the target the version was added or trained with, else "label"; none for a model that
    learns without answers."""
    if card.task not in SUPERVISED:
        if label_column:
            raise InvalidArgument.for_field("data.label_column", f"a {card.task.replace('_', ' ')} model learns without labels")
        return []
    if label_column:
        names = [name.strip() for name in label_column.split(",")]
    else:
        recorded = card.training.get("target")
        names = [str(n) for n in recorded] if isinstance(recorded, list) and recorded else list(card.outputs) or ["label"]
    wanted = len(card.outputs) or 1
    if len(names) != wanted or len(set(names)) != len(names) or not all(names):
        raise InvalidArgument.for_field(
            "data.label_column", f"the model answers {wanted} value(s); name {wanted} distinct column(s), comma-separated"
        )
    clash = sorted(set(names) & set(card.feature_names))
    if clash:
        raise InvalidArgument.for_field("data.label_column", f"{', '.join(clash)} is an input feature of the model")
    return names


def csv_rows(card: ModelCard, payload: bytes, labels: Sequence[str], max_bytes: int) -> Rows:
    """The rows of an uploaded CSV, each cell typed as its feature (an empty cell is a missing
    value), with its true answer; errors name the line."""
    if len(payload) > max_bytes:
        raise ResourceExhausted(
            f"{CSV_FIELD}: {len(payload)} bytes is over the limit of {max_bytes} bytes (PROTOSERVE_TRAINING_MAX_CSV_BYTES)"
        )
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument.for_field(CSV_FIELD, "is not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    kinds = {f.name: "text" if card.is_text else f.type for f in card.inputs}
    rows: list[Row] = []
    truths: list[Any] = []
    try:
        header = [name.strip() for name in next(reader, [])]
        _check_header(card, header, labels)
        for record in reader:
            if not record:
                continue
            line = reader.line_num
            if len(record) != len(header):
                raise InvalidArgument.for_field(CSV_FIELD, f"line {line}: expected {len(header)} fields, got {len(record)}")
            cells = dict(zip(header, record))
            rows.append({name: csv_cell(cells[name], kinds[name], name, line, CSV_FIELD) for name in card.feature_names})
            truths.append(_truth(card, [cells[name] for name in labels], line))
    except csv.Error as exc:
        raise InvalidArgument.for_field(CSV_FIELD, f"line {reader.line_num}: malformed CSV: {exc}") from None
    if not rows:
        raise InvalidArgument.for_field(CSV_FIELD, "holds no rows, only a header")
    return Rows(rows, truths, ["csv"] * len(rows))


def _check_header(card: ModelCard, header: list[str], labels: Sequence[str]) -> None:
    if not header:
        raise InvalidArgument.for_field(CSV_FIELD, "is empty; its first line must name the features"
                                        + (" and the label column" if labels else ""))
    problems = []
    absent = [name for name in labels if name not in header]
    if absent:
        problems.append(f"no label column {', '.join(absent)}")
    missing = [name for name in card.feature_names if name not in header]
    if missing:
        problems.append(f"missing feature column(s) {', '.join(missing)}")
    unknown = [name for name in header if name not in card.feature_names and name not in labels]
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if problems or len(set(header)) != len(header):
        raise InvalidArgument.for_field(CSV_FIELD, "header: " + ("; ".join(problems) or "a column is named twice"))


def _truth(card: ModelCard, cells: list[str], line: int) -> Any:
    if card.task == "classification":
        label = cells[0].strip()
        if not label:
            raise InvalidArgument.for_field(CSV_FIELD, f"line {line}: the label is empty")
        return label
    if card.task != "regression":
        return None
    values = []
    for cell in cells:
        try:
            value = float(cell)
        except ValueError:
            raise InvalidArgument.for_field(CSV_FIELD, f"line {line}: the label {cell!r} is not a number") from None
        if not math.isfinite(value):
            raise InvalidArgument.for_field(CSV_FIELD, f"line {line}: the label must be a finite number")
        values.append(value)
    return values if card.outputs else values[0]


def feedback_rows(card: ModelCard, examples: Sequence[Any]) -> tuple[Rows, int]:
    """Labeled examples (LabeledExample messages) that fit the model's inputs and answers, as rows;
    and how many did not."""
    rows: list[Row] = []
    truths: list[Any] = []
    for example in examples:
        row = _example_row(card, example)
        truth = example.WhichOneof("truth")
        if row is None:
            continue
        if card.task == "classification" and truth == "label" and example.label:
            truths.append(example.label)
        elif card.task == "regression" and not card.outputs and truth == "value" and math.isfinite(example.value):
            truths.append(example.value)
        elif card.task not in SUPERVISED:
            truths.append(None)
        else:
            continue
        rows.append(row)
    return Rows(rows, truths, ["feedback"] * len(rows)), len(examples) - len(rows)


def _example_row(card: ModelCard, example: Any) -> Row | None:
    """An example's inputs as a JSON-form row: one FeatureValue per input, numbers in card order,
    or a text model's text."""
    names = card.feature_names
    if example.inputs:
        if len(example.inputs) != len(names):
            return None
        values = [_feature_value(value) for value in example.inputs]
        return dict(zip(names, values))
    if card.is_text:
        return {names[0]: example.text_input} if not example.numeric_inputs else None
    if len(example.numeric_inputs) != len(names) or not card.is_numeric:
        return None
    row: Row = {}
    for feature, number in zip(card.inputs, example.numeric_inputs):
        if feature.type == "boolean":
            row[feature.name] = bool(number)
        elif feature.type == "integer" and float(number).is_integer():
            row[feature.name] = int(number)
        else:
            row[feature.name] = None if math.isnan(number) else float(number)
    return row


def _feature_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def training_card(card: ModelCard, rows: Sequence[Mapping[str, Any]]) -> ModelCard:
    """The card new training rows are read with: every column may miss values, categorical
    columns take every category the rows hold, none is refused as unknown."""
    inputs = []
    for feature in card.inputs:
        categories = feature.categories
        if feature.type == "categorical":
            seen = {str(row[feature.name]) for row in rows if row.get(feature.name) is not None}
            categories = tuple(sorted(set(categories) | seen))
        inputs.append(replace(feature, nullable=True, categories=categories, max_length=0))
    return replace(card, inputs=tuple(inputs), strict_categories=False)


def model_inputs(card: ModelCard, rows: Sequence[Mapping[str, Any]], max_text_length: int) -> ModelInputs:
    """Rows shaped as the model was fitted (a DataFrame of its dtypes, or an array)."""
    limits = InputLimits(max_rows=max(len(rows), 1), max_text_length=max_text_length)
    try:
        return rows_to_inputs(card, rows, limits)
    except InvalidArgument as exc:  # rows[i] counts the rows of every source from 0
        raise InvalidArgument.for_field("data", f"{exc.message} (rows[i] is training row i, from 0)") from None


def fit_targets(card: ModelCard, truths: Sequence[Any], champion: Any) -> np.ndarray:
    """The answers as the estimator was fitted with them: a classifier's labels as the type of its
    classes (the integers 0 and 1 stay integers when every label reads as one)."""
    if card.task == "regression":
        return np.array(truths, dtype=np.float64)
    classes = getattr(champion, "classes_", None)
    kind = np.asarray(classes).dtype.kind if classes is not None else "O"
    if kind in "iuf":
        try:
            numbers = np.array([float(t) for t in truths])
        except ValueError:
            return np.array(truths, dtype=object)
        if kind in "iu" and np.all(numbers == np.round(numbers)):
            return numbers.astype(np.int64)
        return numbers
    return np.array(truths, dtype=object)


def checked_parameters(estimator: Any, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides of the estimator's parameters, by scikit-learn's nested names (``logisticregression__C``
    in a pipeline), each coerced to the type of its current value and checked by the estimator that
    owns it; INVALID_ARGUMENT naming a parameter that is unknown or a value that is refused."""
    current = estimator.get_params(deep=True)
    params: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in current:
            shown = ", ".join(sorted(k for k in current if not _is_estimator(current[k]))[:40])
            raise InvalidArgument.for_field(f"parameters.{name}", f"is not a parameter of this model (its parameters: {shown})")
        if _is_estimator(current[name]):
            raise InvalidArgument.for_field(f"parameters.{name}", "is a step of the model; a training run changes values only")
        params[name] = coerce_parameter(name, value, current[name])
    candidate = clone(estimator).set_params(**params)
    nested = candidate.get_params(deep=True)
    for name in params:
        owner_path = name.rpartition("__")[0]
        owner = nested[owner_path] if owner_path else candidate
        validate = getattr(owner, "_validate_params", None)
        if validate is None:
            continue
        try:  # scikit-learn checks values when fitting; its own check, run early, names the bad one
            validate()
        except (ValueError, TypeError) as exc:
            raise InvalidArgument.for_field(f"parameters.{name}", str(exc)) from None
    return params


def _is_estimator(value: Any) -> bool:
    return hasattr(value, "get_params") and not isinstance(value, type)


def new_estimator(champion: Any, params: Mapping[str, Any]) -> Any:
    """The champion's estimator with its fitted state cleared and the overrides set."""
    return clone(champion).set_params(**params)


def signature_sample(card: ModelCard, inputs: ModelInputs) -> pd.DataFrame:
    """Model inputs as the DataFrame signature inference reads."""
    if isinstance(inputs, pd.DataFrame):
        return inputs
    if inputs.ndim == 1:
        return pd.DataFrame({card.feature_names[0]: inputs})
    return pd.DataFrame(inputs, columns=list(card.feature_names))


def version_card(card: ModelCard, fitted: Any, inputs: ModelInputs, rows: Sequence[Mapping[str, Any]],
                 targets: Sequence[str]) -> ModelCard:
    """The new version's card: the champion's inputs (the pipeline takes the same columns) with the
    missing values and categories the training rows held, and the answers the refitted estimator
    gives (its classes, clusters, outputs)."""
    signature = infer_signature(fitted, signature_sample(card, inputs), targets)
    features = tuple(_merged_feature(feature, rows) for feature in card.inputs)
    return replace(card, inputs=features, task=signature.task, labels=signature.labels,
                   outputs=signature.outputs or card.outputs, probabilities=signature.probabilities,
                   decision_scores=signature.decision_scores)


def _merged_feature(feature: Feature, rows: Sequence[Mapping[str, Any]]) -> Feature:
    values = [row.get(feature.name) for row in rows]
    nullable = feature.nullable or any(v is None for v in values)
    if feature.type != "categorical":
        return replace(feature, nullable=nullable)
    seen = {str(v) for v in values if v is not None}
    return replace(feature, nullable=nullable, categories=tuple(sorted(set(feature.categories) | seen)))


def reference_columns(card: ModelCard, rows: Sequence[Mapping[str, Any]], count: int, seed: int) -> dict[str, list[Any]]:
    """Up to ``count`` of the training rows, column-oriented: the drift reference and explanation background."""
    chosen: Sequence[int] = range(len(rows))
    if len(rows) > count:
        chosen = sorted(np.random.default_rng(seed).choice(len(rows), size=count, replace=False).tolist())
    return {name: [rows[i].get(name) for i in chosen] for name in card.feature_names}
