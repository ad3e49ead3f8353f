"""A compact, pickle-free byte format for PredictionBatch and model inputs, for Redis.

Layout: a JSON header line naming each entry's dtype and shape, then the entries' bytes. A numeric
array is its raw bytes, decoded with ``np.frombuffer`` (no copies); text is a JSON list of
strings; a DataFrame is JSON: its columns, their dtypes (and categories) and values, NaN and NA as
null. Decoding builds only arrays of allow-listed dtypes, so bytes read back from a shared Redis can
never run anything.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from protoserve_models.inputs import ModelInputs
from protoserve_models.model import PredictionBatch

_BATCH_FIELDS = ("probabilities", "label_indices", "values", "variances", "scores")
_ALLOWED_DTYPES = {"<f8", "<i8", "|O"}
_FRAME = "frame"
# The column dtypes a DataFrame may carry (those rows_to_inputs builds).
_FRAME_DTYPES = re.compile(
    r"^(u?int(8|16|32|64)|float(32|64)|bool|object|category|str|string|boolean|U?Int(8|16|32|64)|Float(32|64))$"
)


def encode_arrays(arrays: dict[str, ModelInputs]) -> bytes:
    header = []
    parts = []
    for name, array in arrays.items():
        if isinstance(array, pd.DataFrame):
            data = json.dumps(_frame_to_json(array)).encode()
            header.append([name, _FRAME, list(array.shape), len(data)])
        elif array.dtype == object:  # text inputs: a JSON list of strings
            data = json.dumps(array.tolist()).encode()
            header.append([name, "|O", list(array.shape), len(data)])
        else:
            array = np.ascontiguousarray(array, dtype="<i8" if array.dtype.kind in "iu" else "<f8")
            data = array.tobytes()
            header.append([name, array.dtype.str, list(array.shape), len(data)])
        parts.append(data)
    return json.dumps(header).encode() + b"\n" + b"".join(parts)


def decode_arrays(blob: bytes) -> dict[str, Any]:
    """The entries by name: numpy arrays, or DataFrames for inputs that were DataFrames."""
    newline = blob.index(b"\n")
    offset = newline + 1
    arrays: dict[str, Any] = {}
    for name, dtype, shape, size in json.loads(blob[:newline]):
        data = blob[offset:offset + size]
        offset += size
        if dtype == _FRAME:
            arrays[name] = _frame_from_json(json.loads(data))
        elif dtype not in _ALLOWED_DTYPES:
            raise ValueError(f"unexpected dtype {dtype!r}")
        elif dtype == "|O":
            arrays[name] = np.array(json.loads(data), dtype=object).reshape(shape)
        else:
            arrays[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
    return arrays


def _plain(value: Any) -> Any:
    """A cell as JSON: missing (NaN, NA, None) as null, numpy scalars as Python ones."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _frame_to_json(frame: pd.DataFrame) -> dict[str, Any]:
    columns = [str(c) for c in frame.columns]
    dtypes = [str(t) for t in frame.dtypes]
    categories = {
        name: [_plain(c) for c in frame[name].cat.categories.tolist()]
        for name, dtype in zip(columns, dtypes) if dtype == "category"
    }
    values = [[_plain(v) for v in frame[name].tolist()] for name in columns]
    return {"columns": columns, "dtypes": dtypes, "categories": categories, "values": values}


def _frame_from_json(data: dict[str, Any]) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for name, dtype, values in zip(data["columns"], data["dtypes"], data["values"], strict=True):
        if not _FRAME_DTYPES.match(dtype):
            raise ValueError(f"unexpected column dtype {dtype!r}")
        columns[name] = _column(values, dtype, data["categories"].get(name, []))
    return pd.DataFrame(columns, copy=False)


def _column(values: list[Any], dtype: str, categories: list[Any]) -> Any:
    if dtype == "category":
        return pd.Categorical(values, categories=categories)
    if dtype[0].isupper() or dtype in ("str", "string", "boolean"):  # pandas' own dtypes keep NA
        return pd.array(values, dtype=dtype)
    if dtype == "object":
        return pd.Series([math.nan if v is None else v for v in values], dtype=object)  # not pandas' str
    return np.array(values, dtype=dtype)  # None is NaN in a float column


def encode_batch(batch: PredictionBatch) -> bytes:
    return encode_arrays({f: getattr(batch, f) for f in _BATCH_FIELDS if getattr(batch, f) is not None})


def decode_batch(blob: bytes) -> PredictionBatch:
    arrays = decode_arrays(blob)
    return PredictionBatch(**{f: arrays.get(f) for f in _BATCH_FIELDS})
