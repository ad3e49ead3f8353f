"""A compact, pickle-free byte format for PredictionBatch and input arrays, for Redis.

Layout: a JSON header line naming each array's dtype and shape, then the arrays' raw bytes.
Decoding is ``np.frombuffer`` (no copies, no code execution), so bytes read back from a shared
Redis can never run anything.
"""

from __future__ import annotations

import json

import numpy as np

from protoserve_models.model import PredictionBatch

_BATCH_FIELDS = ("probabilities", "label_indices", "values", "variances")
_ALLOWED_DTYPES = {"<f8", "<i8", "|O"}


def encode_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    header = []
    parts = []
    for name, array in arrays.items():
        if array.dtype == object:  # text inputs: a JSON list of strings
            data = json.dumps(array.tolist()).encode()
            header.append([name, "|O", list(array.shape), len(data)])
        else:
            array = np.ascontiguousarray(array, dtype="<i8" if array.dtype.kind in "iu" else "<f8")
            data = array.tobytes()
            header.append([name, array.dtype.str, list(array.shape), len(data)])
        parts.append(data)
    return json.dumps(header).encode() + b"\n" + b"".join(parts)


def decode_arrays(blob: bytes) -> dict[str, np.ndarray]:
    newline = blob.index(b"\n")
    offset = newline + 1
    arrays: dict[str, np.ndarray] = {}
    for name, dtype, shape, size in json.loads(blob[:newline]):
        if dtype not in _ALLOWED_DTYPES:
            raise ValueError(f"unexpected dtype {dtype!r}")
        data = blob[offset:offset + size]
        offset += size
        if dtype == "|O":
            arrays[name] = np.array(json.loads(data), dtype=object).reshape(shape)
        else:
            arrays[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
    return arrays


def encode_batch(batch: PredictionBatch) -> bytes:
    return encode_arrays({f: getattr(batch, f) for f in _BATCH_FIELDS if getattr(batch, f) is not None})


def decode_batch(blob: bytes) -> PredictionBatch:
    arrays = decode_arrays(blob)
    return PredictionBatch(**{f: arrays.get(f) for f in _BATCH_FIELDS})
