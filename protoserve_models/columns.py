"""Checked rows of a model fitted on a pandas DataFrame, held as plain columns until a DataFrame is
needed.

A DataFrame costs a few microseconds per row but tens per column to build (pandas checks and
converts every column), and tens more to read a column back out of it. A request's rows are
checked value by value anyway, so they are kept as one list of values per card column (None for a
missing value): a fast kernel reads those directly, the batcher stacks the lists of several calls,
and the DataFrame the estimator was fitted with is built once per model call, from the whole batch,
only when the estimator itself is called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from protoserve_models.card import Feature


def frame_column(feature: Feature, values: list[Any]) -> Any:
    """One DataFrame column of the dtype the model was fitted with; nulls as pandas held them
    in training (NaN in float and object columns, NA in pandas' nullable dtypes)."""
    dtype = feature.dtype
    has_null = feature.nullable and any(v is None for v in values)
    if dtype == "category":
        return pd.Categorical(values, categories=list(feature.categories))
    if (dtype and dtype[0].isupper()) or dtype in ("boolean", "string", "str"):  # pandas' own dtypes: Int64, Float64, ...
        return pd.array(values, dtype=dtype)
    if feature.type == "double":
        return np.array(values, dtype=dtype or np.float64)
    if feature.type == "integer":
        return np.array(values, dtype=np.float64 if has_null else (dtype or np.int64))
    if feature.type == "boolean" and not has_null:
        return np.array(values, dtype=bool)
    # A Series, since pandas would make an object array of strings its own str dtype.
    return pd.Series([math.nan if v is None else v for v in values], dtype=object)


class ColumnInputs:
    """Rows checked against a DataFrame model's card: one list of Python values per card input, in
    card order (None: a missing value where the column is nullable)."""

    __slots__ = ("features", "values", "_frame")

    def __init__(self, features: Sequence[Feature], values: Sequence[list[Any]]) -> None:
        self.features = tuple(features)
        self.values = tuple(values)
        self._frame: pd.DataFrame | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.values[0]) if self.values else 0, len(self.values))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def frame(self) -> pd.DataFrame:
        """The rows as the DataFrame the model was fitted with (built on the first call, then kept)."""
        if self._frame is None:
            columns = {f.name: frame_column(f, values) for f, values in zip(self.features, self.values)}
            self._frame = pd.DataFrame(columns, copy=False)
        return self._frame

    def numbers(self) -> np.ndarray:
        """Every column as float64, rows × columns, missing values as NaN (booleans as 0/1); raises
        ValueError or TypeError when a column holds text."""
        return np.array(self.values, dtype=np.float64).T

    def column(self, position: int) -> np.ndarray:
        """One column: float64 for numbers (missing as NaN), else its values as objects (None missing)."""
        values = self.values[position]
        if self.features[position].type in ("double", "integer"):
            return np.array(values, dtype=np.float64)
        column = np.empty(len(values), dtype=object)
        column[:] = values
        return column

    def take(self, rows: Sequence[int]) -> ColumnInputs:
        return ColumnInputs(self.features, [[values[i] for i in rows] for values in self.values])

    @staticmethod
    def stack(parts: Sequence[ColumnInputs]) -> ColumnInputs:
        """Several calls' rows as one (for batching), in order."""
        columns: list[list[Any]] = [[] for _ in parts[0].values]
        for part in parts:
            for column, values in zip(columns, part.values):
                column.extend(values)
        return ColumnInputs(parts[0].features, columns)


def numeric_matrix(inputs: Any) -> np.ndarray:
    """Rows × columns as float64 (missing values as NaN) from a model's array, a DataFrame or
    checked columns; raises ValueError or TypeError when a column holds text."""
    if isinstance(inputs, ColumnInputs):
        return inputs.numbers()
    if isinstance(inputs, pd.DataFrame):
        return inputs.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(inputs, dtype=np.float64)
