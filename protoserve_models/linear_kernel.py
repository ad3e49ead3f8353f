"""An exact fast ``predict_proba`` for the pipeline users bring most: a ColumnTransformer of
imputers, scalers and one-hot encoders (or those steps alone) in front of a LogisticRegression.

scikit-learn spends about a millisecond per call on such a pipeline whatever the number of rows:
pandas column selection, validation and dispatch in every step, a sparse matrix for the one-hot
block. The arithmetic is a few vector operations and one matrix product. The kernel is compiled
from the fitted attributes (imputers' ``statistics_``, scalers' ``mean_``/``scale_``, encoders'
``categories_``, the model's ``coef_``/``intercept_``) and computes the same probabilities in that
order of operations; they agree with scikit-learn's to rounding (the parity tests: within 1e-12,
relative), and a row whose two most probable classes are that close is answered by scikit-learn
itself, so the label served is always its own. Anything the kernel does not know exactly -- another
step, an option that changes the arithmetic, a category the encoder would refuse -- is not compiled,
or (for a refused category) answered by scikit-learn, which raises its own error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from protoserve_models.columns import ColumnInputs
from protoserve_models.inputs import model_input

# Rows whose two most probable classes are closer than this are handed to scikit-learn: rounding
# could order them differently here and there.
TIE_TOLERANCE = 1e-9


class Unsupported(Exception):
    """The pipeline holds something the kernel does not compute exactly."""


class Refused(Exception):
    """A value scikit-learn would refuse (an unknown category with handle_unknown='error')."""


Block = Callable[[list[np.ndarray]], np.ndarray]  # the input's columns -> this block's output columns


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class _Numeric:
    """Imputation and scaling of numeric columns, as SimpleImputer and StandardScaler compute them."""

    fill: np.ndarray | None  # per column; None: no imputer
    mean: np.ndarray | None
    scale: np.ndarray | None

    def __call__(self, columns: list[np.ndarray]) -> np.ndarray:
        x = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns]) if columns else np.empty((0, 0))
        if self.fill is not None:
            missing = np.isnan(x)
            if missing.any():
                x = np.where(missing, self.fill, x)
        if self.mean is not None:
            x = x - self.mean
        if self.scale is not None:
            x = x / self.scale
        return x


@dataclass(frozen=True)
class _OneHot:
    """OneHotEncoder's dense output: one block of columns per input column, a 1 at the category."""

    fill: list[Any] | None  # a SimpleImputer's statistics before the encoder; None: no imputer
    lookups: list[dict[Any, int]]  # per column: category -> its position in the block
    missing_index: list[int | None]  # per column: the position of the NaN category, if fitted with one
    widths: list[int]
    refuse_unknown: bool

    def __call__(self, columns: list[np.ndarray]) -> np.ndarray:
        rows = len(columns[0]) if columns else 0
        out = np.zeros((rows, sum(self.widths)), dtype=np.float64)
        offset = 0
        for j, column in enumerate(columns):
            lookup, nan_at = self.lookups[j], self.missing_index[j]
            for i, value in enumerate(column.tolist()):
                if _is_missing(value) and self.fill is not None:
                    value = self.fill[j]
                at = nan_at if _is_missing(value) else lookup.get(value)
                if at is None:
                    if self.refuse_unknown:
                        raise Refused()
                    continue  # handle_unknown="ignore": all zeros
                out[i, offset + at] = 1.0
            offset += self.widths[j]
        return out


def _numeric_steps(steps: Sequence[Any], width: int) -> _Numeric:
    fill = mean = scale = None
    for step in steps:
        if isinstance(step, SimpleImputer) and fill is None and mean is None and scale is None:
            statistics = np.asarray(step.statistics_, dtype=np.float64)
            if (not _is_missing(step.missing_values) or step.add_indicator or statistics.shape != (width,)
                    or np.isnan(statistics).any()):  # an all-missing column would be dropped
                raise Unsupported("imputer")
            fill = statistics
        elif isinstance(step, StandardScaler) and mean is None and scale is None:
            mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
            scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None
        else:
            raise Unsupported(type(step).__name__)
    return _Numeric(fill, mean, scale)


def _one_hot(steps: Sequence[Any]) -> _OneHot:
    *before, encoder = steps
    fill = None
    if before:
        (imputer,) = before if len(before) == 1 else (None,)
        if not isinstance(imputer, SimpleImputer) or not _is_missing(imputer.missing_values) or imputer.add_indicator:
            raise Unsupported("before the encoder")
        fill = list(imputer.statistics_)
        if any(_is_missing(v) for v in fill):
            raise Unsupported("imputer without a fill value")
    if (encoder.drop is not None or getattr(encoder, "infrequent_categories_", None) is not None
            or encoder.min_frequency is not None or encoder.max_categories is not None
            or encoder.handle_unknown not in ("ignore", "error")):
        raise Unsupported("encoder options")
    lookups, missing, widths = [], [], []
    for categories in encoder.categories_:
        values = list(categories.tolist())
        lookups.append({v: k for k, v in enumerate(values) if not _is_missing(v)})
        missing.append(next((k for k, v in enumerate(values) if _is_missing(v)), None))
        widths.append(len(values))
    return _OneHot(fill, lookups, missing, widths, encoder.handle_unknown == "error")


def _block(transformer: Any, width: int) -> Block:
    steps = [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    if steps and isinstance(steps[-1], OneHotEncoder):
        return _one_hot(steps)
    return _numeric_steps(steps, width)


@dataclass(frozen=True)
class _Part:
    positions: list[int]  # which input columns the block reads
    block: Block


class LinearPipelineKernel:
    """predict_proba of a fitted Pipeline(ColumnTransformer | imputer/scaler steps, LogisticRegression)."""

    def __init__(self, estimator: Pipeline, parts: list[_Part], columns: list[str] | None) -> None:
        self._estimator = estimator
        self._parts = parts
        self._columns = columns  # the DataFrame columns read, in order; None: a numpy matrix
        final: LogisticRegression = estimator.steps[-1][1]
        self._coef_t = np.ascontiguousarray(np.asarray(final.coef_, dtype=np.float64).T)
        self._intercept = np.asarray(final.intercept_, dtype=np.float64)
        self._binary = len(final.classes_) <= 2

    @staticmethod
    def compile(estimator: Any) -> LinearPipelineKernel | None:
        if not (isinstance(estimator, Pipeline) and len(estimator.steps) >= 2
                and isinstance(estimator.steps[-1][1], LogisticRegression)):
            return None
        final = estimator.steps[-1][1]
        if np.ndim(final.coef_) != 2 or getattr(final, "multi_class", "deprecated") not in ("auto", "deprecated", "multinomial"):
            return None
        if len(final.classes_) > 2 and final.solver == "liblinear":
            return None
        front = [s for _, s in estimator.steps[:-1] if s != "passthrough" and s is not None]
        try:
            if len(front) == 1 and isinstance(front[0], ColumnTransformer):
                parts, columns = _column_transformer(front[0])
            elif front and all(isinstance(s, (SimpleImputer, StandardScaler)) for s in front):
                width = int(front[0].n_features_in_)
                parts, columns = [_Part(list(range(width)), _numeric_steps(front, width))], None
                names = getattr(front[0], "feature_names_in_", None)
                if names is not None:
                    columns = [str(n) for n in names]
            else:
                return None
        except Unsupported:
            return None
        return LinearPipelineKernel(estimator, parts, columns)

    def __call__(self, inputs: Any) -> np.ndarray:
        try:
            probabilities = self._probabilities(self._input_columns(inputs))
        except Refused:
            return np.asarray(self._estimator.predict_proba(model_input(inputs)))  # scikit-learn raises its own error
        top_two = np.sort(probabilities, axis=1)[:, -2:]
        close = np.flatnonzero(top_two[:, 1] - top_two[:, 0] <= TIE_TOLERANCE)
        if close.size:  # rounding could order them otherwise in scikit-learn: ask it
            if isinstance(inputs, ColumnInputs):
                subset: Any = inputs.take(close.tolist()).frame()
            else:
                subset = inputs.iloc[close] if isinstance(inputs, pd.DataFrame) else inputs[close]
            probabilities[close] = self._estimator.predict_proba(subset)
        return probabilities

    def _input_columns(self, inputs: Any) -> list[np.ndarray]:
        if isinstance(inputs, ColumnInputs):
            given = inputs.names
            return [inputs.column(given.index(name)) for name in (self._columns or given)]
        if isinstance(inputs, pd.DataFrame):
            names = self._columns if self._columns is not None else list(inputs.columns)
            return [_values(inputs[name]) for name in names]
        matrix = np.asarray(inputs)
        return [matrix[:, j] for j in range(matrix.shape[1])]

    def _probabilities(self, columns: list[np.ndarray]) -> np.ndarray:
        blocks = [part.block([columns[p] for p in part.positions]) for part in self._parts]
        features = blocks[0] if len(blocks) == 1 else np.hstack(blocks)
        decision = features @ self._coef_t + self._intercept
        if self._binary:
            positive = 1.0 / (1.0 + np.exp(-decision[:, 0]))
            return np.stack([1 - positive, positive], axis=1)
        decision -= decision.max(axis=1, keepdims=True)
        np.exp(decision, out=decision)
        decision /= decision.sum(axis=1, keepdims=True)
        return decision


def _values(column: pd.Series) -> np.ndarray:
    """A column's values: float64 for numbers (pandas NA as NaN), objects otherwise."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return column.to_numpy(dtype=object)


def _column_transformer(transformer: ColumnTransformer) -> tuple[list[_Part], list[str] | None]:
    names = getattr(transformer, "feature_names_in_", None)
    columns = [str(n) for n in names] if names is not None else None
    parts: list[_Part] = []
    for _, inner, selected in transformer.transformers_:
        positions = _positions(selected, columns)
        if inner == "drop" or not positions:
            continue
        if inner == "passthrough":
            parts.append(_Part(positions, _Numeric(None, None, None)))
        else:
            parts.append(_Part(positions, _block(inner, len(positions))))
    if not parts:
        raise Unsupported("no columns")
    return parts, columns


def _positions(selected: Any, columns: list[str] | None) -> list[int]:
    """Column positions of a ColumnTransformer's fitted selection (names, indices or a mask)."""
    if isinstance(selected, slice) or callable(selected):
        raise Unsupported("column selection")
    items = list(np.asarray(selected).tolist()) if not isinstance(selected, str) else [selected]
    if items and all(isinstance(v, bool) for v in items):
        return [i for i, keep in enumerate(items) if keep]
    if all(isinstance(v, int) for v in items):
        return [int(v) for v in items]
    if columns is None:
        raise Unsupported("named columns without feature_names_in_")
    return [columns.index(str(v)) for v in items]
