"""Real data as users have it (palmerpenguins, scikit-learn's bundled datasets) and helpers that
answer JSON-form rows the way Predict receives them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins

from protoserve_models.columns import ColumnInputs
from protoserve_models.inputs import InputLimits, rows_to_inputs
from protoserve_models.model import LoadedModel, PredictionBatch
from protoserve_models.repository import ModelRepository, VersionState
from protoserve_models.signature import infer_feature, json_columns

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
LIMITS = InputLimits(max_rows=1_000, max_text_length=5_000)


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    return load_penguins()


def json_value(value: Any) -> Any:
    """A value as JSON carries it: missing values (None, NaN, pandas NA) as null, numpy scalars as Python's."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a Predict request carries them: numbers, strings, booleans and null."""
    return [{k: json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def load(root: Path, name: str) -> LoadedModel:
    """The newest version as the repository serves it; every version must be READY."""
    repository = ModelRepository(root)
    repository.load_all()
    entries = repository.versions(name)
    assert all(e.state is VersionState.READY for e in entries), {e.version: e.reason for e in entries}
    return repository.get(name)


def checked_columns(frame: pd.DataFrame) -> ColumnInputs:
    """The rows as the serving path holds them after its checks: JSON-form values per column."""
    features = [infer_feature(str(name), frame[name], dataframe=True) for name in frame.columns]
    values = json_columns(frame, features)
    return ColumnInputs(features, [values[f.name] for f in features])


def answer(model: LoadedModel, rows: list[dict[str, Any]]) -> PredictionBatch:
    return model.predict(rows_to_inputs(model.card, rows, LIMITS))


def labels_of(model: LoadedModel, outputs: PredictionBatch) -> list[str]:
    assert outputs.label_indices is not None
    return [model.card.labels[i] for i in outputs.label_indices]
