"""Checks request rows against a model card and turns them into the input the model was fitted on.

Nothing reaches a model unchecked: every row must carry exactly the card's features, each value of
its feature's type (numbers finite, whole numbers whole, strings within their length limit, null
only where the feature is nullable). All problems are reported at once (up to a cap), each naming
its field as ``rows[i].feature``.

A model fitted on numpy gets a float64 matrix (rows × card features), an object matrix when some
feature is a string, or a 1-D object array of strings for a text pipeline. A model fitted on a
pandas DataFrame gets a DataFrame with the card's column names and the dtypes it was fitted with;
the serving path keeps its rows as checked columns (``check_rows``, protoserve_models.columns)
and builds that DataFrame once per model call, only when the estimator itself is called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from protoserve_models.card import Feature, ModelCard
from protoserve_models.columns import ColumnInputs
from protoserve_runtime.errors import FieldViolation, InvalidArgument

MAX_REPORTED_VIOLATIONS = 20
MAX_LISTED_CATEGORIES = 10
_INT64_LIMIT = 2**63

# What a model takes: a numpy array or, for a model fitted on one, a pandas DataFrame.
ModelInputs: TypeAlias = np.ndarray | pd.DataFrame
# What the serving path carries: those, or the checked columns a DataFrame is built from when the
# estimator is called (model_input).
ServedInputs: TypeAlias = np.ndarray | pd.DataFrame | ColumnInputs


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


def check_whole_number(value: Any, field: str, violations: _Violations) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        violations.add(field, f"expected a whole number, got {_type_name(value)}")
        return 0
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        violations.add(field, f"expected a whole number, got {value}")
        return 0
    if not -_INT64_LIMIT <= value < _INT64_LIMIT:
        violations.add(field, f"{value} is out of the range of a 64-bit integer")
        return 0
    return int(value)


def check_boolean(value: Any, field: str, violations: _Violations) -> bool:
    if not isinstance(value, bool):
        violations.add(field, f"expected true or false, got {_type_name(value)}")
        return False
    return value


# Checks one value of one feature; returns the value to feed (None for an accepted null).
ValueCheck = Callable[[Any, str, _Violations], Any]


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _value_check(card: ModelCard, feature: Feature, limits: InputLimits) -> ValueCheck:
    check: ValueCheck
    if feature.type == "double":
        check = check_number
    elif feature.type == "integer":
        check = check_whole_number
    elif feature.type == "boolean":
        check = check_boolean
    else:
        check = _text_check(card, feature, feature.max_length or limits.max_text_length)
    if not feature.nullable:
        if feature.type == "double":
            return check
        return _refusing_null(check)
    return _accepting_null(check)


def _refusing_null(check: ValueCheck) -> ValueCheck:
    def checked(value: Any, field: str, violations: _Violations) -> Any:
        if value is None:
            violations.add(field, "must not be null; this feature takes no missing values")
            return None
        return check(value, field, violations)

    return checked


def _accepting_null(check: ValueCheck) -> ValueCheck:
    def checked(value: Any, field: str, violations: _Violations) -> Any:
        return None if _is_null(value) else check(value, field, violations)

    return checked


def _text_check(card: ModelCard, feature: Feature, max_length: int) -> ValueCheck:
    if feature.type != "categorical" or not card.strict_categories:
        return lambda value, field, violations: check_text(value, field, max_length, violations)
    known = frozenset(feature.categories)
    listed = ", ".join(feature.categories[:MAX_LISTED_CATEGORIES])
    if len(feature.categories) > MAX_LISTED_CATEGORIES:
        listed += ", ..."

    def checked(value: Any, field: str, violations: _Violations) -> str:
        text = check_text(value, field, max_length, violations)
        if isinstance(value, str) and text not in known:
            violations.add(field, f"unknown category {text!r}; the model knows {listed}")
        return text

    return checked


def rows_to_inputs(card: ModelCard, rows: Sequence[Mapping[str, Any]], limits: InputLimits) -> ModelInputs:
    """The model's input for these rows, as the model was fitted: see the module's docstring."""
    return model_input(check_rows(card, rows, limits))


def model_input(inputs: ServedInputs) -> ModelInputs:
    """What the estimator itself is called with: checked columns become their DataFrame."""
    return inputs.frame() if isinstance(inputs, ColumnInputs) else inputs


def check_rows(card: ModelCard, rows: Sequence[Mapping[str, Any]], limits: InputLimits) -> ServedInputs:
    """The rows checked against the card: the model's array, or a DataFrame model's checked columns."""
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
    checks = [_value_check(card, feature, limits) for feature in card.inputs]
    columns: list[list[Any]] = [[None] * len(rows) for _ in names]
    for i, row in enumerate(rows):
        _check_keys(row, expected, names, i, violations)
        for j, name in enumerate(names):
            if name in row:
                columns[j][i] = checks[j](row[name], f"rows[{i}].{name}", violations)
    violations.raise_if_any()
    if card.input_format == "dataframe":
        return ColumnInputs(card.inputs, columns)
    if card.is_numeric:  # None (an accepted null) becomes NaN, true/false 1/0
        return np.array(columns, dtype=np.float64).T.copy()
    matrix = np.empty((len(rows), len(names)), dtype=object)
    for j, values in enumerate(columns):
        matrix[:, j] = [math.nan if v is None else v for v in values]
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


def input_rows(inputs: ServedInputs) -> int:
    return int(inputs.shape[0])


def stack_inputs(parts: Sequence[ServedInputs]) -> ServedInputs:
    """Several calls' inputs as one (for batching): rows in order, columns and dtypes kept."""
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], ColumnInputs):
        return ColumnInputs.stack(parts)  # type: ignore[arg-type]
    if isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts, ignore_index=True)
    return np.concatenate(parts)  # type: ignore[arg-type]
