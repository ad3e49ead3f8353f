"""A run's rows: from the built-in data, an uploaded CSV and labeled feedback, checked against the
model card, fingerprinted, and split into training and held-out rows.

The CSV is checked in full when TrainModel is called (header, every value, every label), so a run
a worker takes fails only for reasons found while training.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from protoserve_models.builtin.recipes import RecipeData
from protoserve_models.card import ModelCard
from protoserve_models.inputs import InputLimits, rows_to_inputs
from protoserve_models.jobs.payload import csv_cell
from protoserve_runtime.errors import InvalidArgument, ResourceExhausted

SOURCES = ("builtin", "csv", "feedback")
DEFAULT_LABEL_COLUMN = "label"


@dataclass(frozen=True)
class Part:
    """Rows of one source: x as the model takes it (float matrix or 1-D object array of texts)."""

    source: str
    x: np.ndarray
    y: np.ndarray
    strata: list[str] | None = None
    domains: list[str] | None = None


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_domains: list[str] | None
    fingerprint: str
    rows_by_source: dict[str, int] = field(default_factory=dict)


def builtin_part(data: RecipeData) -> Part:
    return Part("builtin", data.x, data.y, data.strata, data.domains)


def _truth(card: ModelCard, raw: str, where: str) -> Any:
    if card.task == "classification":
        if raw not in card.labels:
            raise InvalidArgument.for_field(
                "data.csv", f"{where}: {raw!r} is not a class the model knows ({', '.join(card.labels)})"
            )
        return raw
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgument.for_field("data.csv", f"{where}: the label {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidArgument.for_field("data.csv", f"{where}: the label must be a finite number")
    return value


def csv_part(card: ModelCard, payload: bytes, label_column: str, max_bytes: int, limits: InputLimits) -> Part:
    """The rows of an uploaded CSV, each checked like a Predict row, with its label."""
    if len(payload) > max_bytes:
        raise ResourceExhausted(
            f"data.csv: {len(payload)} bytes is over the limit of {max_bytes} bytes (PROTOSERVE_TRAINING_MAX_CSV_BYTES)"
        )
    label_column = label_column or DEFAULT_LABEL_COLUMN
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument.for_field("data.csv", "is not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise InvalidArgument.for_field("data.csv", "is empty; its first line must name the features and the label column")
        missing = [name for name in card.feature_names if name not in header]
        problems = []
        if label_column not in header:
            problems.append(f"no label column {label_column!r}")
        if missing:
            problems.append(f"missing feature column(s) {', '.join(missing)}")
        unknown = [name for name in header if name not in card.feature_names and name != label_column]
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if problems or len(set(header)) != len(header):
            raise InvalidArgument.for_field("data.csv", "header: " + ("; ".join(problems) or "a column is named twice"))
        rows: list[dict[str, Any]] = []
        labels: list[Any] = []
        at = header.index(label_column)
        kinds = {f.name: "text" if card.is_text else f.type for f in card.inputs}
        for record in reader:
            if not record:
                continue
            line = reader.line_num
            if len(record) != len(header):
                raise InvalidArgument.for_field("data.csv", f"line {line}: expected {len(header)} fields, got {len(record)}")
            labels.append(_truth(card, record[at].strip(), f"line {line}"))
            rows.append({name: csv_cell(value, kinds[name], name, line, "data.csv")
                         for name, value in zip(header, record) if name != label_column})
    except csv.Error as exc:
        raise InvalidArgument.for_field("data.csv", f"line {reader.line_num}: malformed CSV: {exc}") from None
    if not rows:
        raise InvalidArgument.for_field("data.csv", "holds no rows, only a header")
    big = InputLimits(max_rows=max(len(rows), 1), max_text_length=limits.max_text_length)
    try:
        x = rows_to_inputs(card, rows, big)
    except InvalidArgument as exc:  # rows[i] counts the data rows after the header from 0
        raise InvalidArgument.for_field("data.csv", f"{exc.message} (rows[i] is data row i, from 0)") from None
    return Part("csv", x, np.array(labels, dtype=object if card.task == "classification" else np.float64))


def _canonical(x: np.ndarray, y: np.ndarray) -> list[str]:
    if x.ndim == 1:
        return [json.dumps([str(a), _plain(b)], ensure_ascii=False) for a, b in zip(x.tolist(), y.tolist())]
    return [json.dumps([*[float(v) for v in row], _plain(b)]) for row, b in zip(x.tolist(), y.tolist())]


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def fingerprint(parts: Sequence[Part]) -> str:
    """SHA-256 of every row (features and answer) as sorted JSON lines: the same rows, the same print."""
    digest = hashlib.sha256()
    for line in sorted(line for part in parts for line in _canonical(part.x, part.y)):
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _stratify(parts: Sequence[Part], y: np.ndarray, classification: bool, test_size: float) -> list[str] | None:
    """Each part's own strata, else source:label; looser when a stratum is too small to split."""
    if not classification:
        return None
    strata: list[str] = []
    for part in parts:
        strata.extend(part.strata if part.strata is not None else [f"{part.source}:{label}" for label in part.y])
    for candidate in (strata, [str(label) for label in y]):
        counts = Counter(candidate)
        if min(counts.values()) >= 2 and len(counts) <= round(len(candidate) * test_size):
            return candidate
    return None


def split(parts: Sequence[Part], classification: bool, test_size: float, seed: int) -> Split:
    """Training and held-out rows. The built-in rows are split as the built-in build splits them."""
    parts = [p for p in parts if len(p.y)]
    x = parts[0].x if len(parts) == 1 else _stack([p.x for p in parts])
    y = np.concatenate([p.y for p in parts]) if len(parts) > 1 else parts[0].y
    if classification:
        y = y.astype(str)
    domains: list[str] | None = None
    if any(p.domains is not None for p in parts):
        domains = [d for p in parts for d in (p.domains if p.domains is not None else [p.source] * len(p.y))]
    if len(y) < 2:
        raise InvalidArgument.for_field("data", f"{len(y)} row(s): at least two are needed to hold some out")
    # Each source is split on its own: the built-in rows exactly as the built-in build splits them,
    # so a champion built from them is never scored on rows it learned from.
    trains, tests, offset = [], [], 0
    for part in parts:
        indices = np.arange(offset, offset + len(part.y))
        offset += len(part.y)
        if len(indices) < 2:
            trains.append(indices)
            continue
        part_y = y[indices]
        part_train, part_test = train_test_split(indices, test_size=test_size, random_state=seed,
                                                 stratify=_stratify([part], part_y, classification, test_size))
        trains.append(part_train)
        tests.append(part_test)
    train = np.concatenate(trains)
    test = np.concatenate(tests) if tests else np.zeros(0, dtype=np.int64)
    if not len(test):
        raise InvalidArgument.for_field("data", "too few rows to hold some out for the held-out metrics")
    return Split(
        x[train], y[train], x[test], y[test],
        None if domains is None else [domains[i] for i in test],
        fingerprint(parts),
        {p.source: len(p.y) for p in parts},
    )


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    if arrays[0].ndim == 1:
        return np.concatenate([a.astype(object) for a in arrays])
    return np.vstack(arrays)
