"""Reading a user's fitted model from what they have: a skops file, a joblib/pickle file, or an
MLflow model directory (sklearn flavor; its model saved with skops, as MLflow 3 does by default, or pickled).

Pickle runs code of the file's choosing while it loads, so a pickle (and an MLflow directory,
which holds one) is read only when the caller says they trust it; the model is then converted
to skops, and from there on it is read safely like any other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import yaml

from protoserve_models.loading import read_estimator

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
MLMODEL_FILE = "MLmodel"
# MLflow's column types, as the pandas dtypes it gives them.
_MLFLOW_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32",
                  "boolean": "bool", "string": "object"}


class ModelFileError(ValueError):
    """The model file cannot be read, or may not be read without trust."""


@dataclass(frozen=True)
class UserModel:
    estimator: Any
    source: str  # where it came from, for the card
    input_example: pd.DataFrame | None = None  # an MLflow model's saved input example


def read_user_model(path: Path, trust_pickle: bool = False, trusted_types: Iterable[str] = ()) -> UserModel:
    if (path / MLMODEL_FILE).is_file():
        return _read_mlflow(path, trust_pickle, trusted_types)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file (a .skops or .joblib/.pkl file, or an MLflow model directory)")
    if path.suffix == ".skops":
        return UserModel(read_estimator(path, trusted_types), str(path))
    if path.suffix in PICKLE_SUFFIXES:
        return UserModel(_unpickle(path, trust_pickle), str(path))
    raise ModelFileError(f"{path}: unknown model file type {path.suffix!r}; use .skops, .joblib, .pkl or an MLflow directory")


def _unpickle(path: Path, trust_pickle: bool) -> Any:
    if not trust_pickle:
        raise ModelFileError(
            f"{path} is a pickle: loading it runs whatever code it holds. Pass --trust-pickle "
            "(trust_pickle=True) only for a file you made or trust; it is converted to skops"
        )
    try:
        return joblib.load(path)  # reads plain pickles too
    except Exception as exc:  # a file of any kind may fail to unpickle in any way
        raise ModelFileError(f"{path}: cannot unpickle: {type(exc).__name__}: {exc}") from exc


def _read_mlflow(directory: Path, trust_pickle: bool, trusted_types: Iterable[str] = ()) -> UserModel:
    try:
        meta = yaml.safe_load((directory / MLMODEL_FILE).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ModelFileError(f"{directory / MLMODEL_FILE}: {exc}") from exc
    flavor = (meta.get("flavors") or {}).get("sklearn")
    if not flavor or "pickled_model" not in flavor:
        raise ModelFileError(f"{directory}: an MLflow model without the sklearn flavor cannot be served")
    model_file = directory / str(flavor["pickled_model"])
    if flavor.get("serialization_format") == "skops":  # MLflow 3's default: read safely, no trust needed
        estimator = read_estimator(model_file, trusted_types)
    else:  # pickle or cloudpickle
        estimator = _unpickle(model_file, trust_pickle)
    return UserModel(estimator, f"MLflow model {directory}", _input_example(directory, meta))


def _input_example(directory: Path, meta: dict[str, Any]) -> pd.DataFrame | None:
    """The saved input example as a DataFrame, with the signature's column types when it has one."""
    info = meta.get("saved_input_example_info") or {}
    path = directory / str(info.get("artifact_path", "input_example.json"))
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    data = data.get("dataframe_split", data) if isinstance(data, dict) else data
    if not (isinstance(data, dict) and "data" in data):
        return None
    frame = pd.DataFrame(data["data"], columns=data.get("columns"))
    for column in _signature_inputs(meta):
        dtype = _MLFLOW_DTYPES.get(str(column.get("type")))
        name = column.get("name")
        if dtype and name in frame.columns and not frame[name].isna().any():
            frame[name] = frame[name].astype(dtype)
    return frame


def _signature_inputs(meta: dict[str, Any]) -> list[dict[str, Any]]:
    inputs = (meta.get("signature") or {}).get("inputs")
    try:
        parsed = json.loads(inputs) if isinstance(inputs, str) else []
    except json.JSONDecodeError:
        return []
    return [c for c in parsed if isinstance(c, dict)] if isinstance(parsed, list) else []
