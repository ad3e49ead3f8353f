"""Checks request rows against a model card and turns them into the model's input array.

Nothing reaches a model unchecked: every row must carry exactly the card's features, numbers
finite, strings within their length limit. All problems are reported at once (up to a cap),
each naming its field as ``rows[i].feature``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from protoserve_models.card import ModelCard
from protoserve_runtime.errors import FieldViolation, InvalidArgument

MAX_REPORTED_VIOLATIONS = 20


@dataclass(frozen=True)
class InputLimits:
    max_rows: int
    max_text_length: int


def check_row_count(count: int, limits: InputLimits, field: str = "rows") -> None:
    if count == 0:
        raise InvalidArgument.for_field(field, "at least one row is needed")
    if count > limits.max_rows:
        raise InvalidArgument.for_field(
            field, f"{count} rows is over the limit of {limits.max_rows} per request"
        )


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a list" if isinstance(value, (list, tuple)) else "an object"


class _Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        if len(self.items) < MAX_REPORTED_VIOLATIONS:
            self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]
            more = f" (and {len(self.items) - 1} more)" if len(self.items) > 1 else ""
            raise InvalidArgument(f"{first.field}: {first.description}{more}", self.items)


def check_text(value: Any, field: str, max_length: int, violations: _Violations) -> str:
    if not isinstance(value, str):
        violations.add(field, f"expected a string, got {_type_name(value)}")
        return ""
    if len(value) > max_length:
        violations.add(field, f"{len(value)} characters is over the limit of {max_length}")
    return value


def check_number(value: Any, field: str, violations: _Violations) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        violations.add(field, f"expected a number, got {_type_name(value)}")
        return 0.0
    if not math.isfinite(value):
        violations.add(field, f"must be a finite number, got {value}")
        return 0.0
    return float(value)


def rows_to_inputs(card: ModelCard, rows: Sequence[Mapping[str, Any]], limits: InputLimits) -> np.ndarray:
    """A float64 matrix (rows × card features) or, for text models, an object array of strings."""
    check_row_count(len(rows), limits)
    names = card.feature_names
    expected = set(names)
    violations = _Violations()
    if card.is_text:
        feature = card.inputs[0]
        max_length = feature.max_length or limits.max_text_length
        texts = np.empty(len(rows), dtype=object)
        for i, row in enumerate(rows):
            _check_keys(row, expected, names, i, violations)
            texts[i] = check_text(row.get(feature.name), f"rows[{i}].{feature.name}", max_length, violations)
        violations.raise_if_any()
        return texts
    matrix = np.empty((len(rows), len(names)), dtype=np.float64)
    for i, row in enumerate(rows):
        _check_keys(row, expected, names, i, violations)
        for j, name in enumerate(names):
            if name in row:
                matrix[i, j] = check_number(row[name], f"rows[{i}].{name}", violations)
    violations.raise_if_any()
    return matrix


def _check_keys(row: Mapping[str, Any], expected: set[str], names: Sequence[str], i: int, violations: _Violations) -> None:
    keys = set(row.keys())
    if keys == expected:
        return
    for name in names:
        if name not in keys:
            violations.add(f"rows[{i}].{name}", "missing; every row needs every input feature")
    for name in sorted(keys - expected):
        violations.add(f"rows[{i}].{name}", f"unknown feature; the model takes {', '.join(names)}")
