"""The Open Inference Protocol's datatypes and raw-bytes layout, shared by the inference service
(which decodes tensors) and the gateway (which turns REST JSON into raw gRPC contents and back).

Raw contents are little-endian; a BYTES tensor's raw contents are its elements, each prefixed
by its length as a 4-byte little-endian unsigned integer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import numpy as np

# Wire datatype -> numpy dtype (explicitly little-endian, as the protocol says for raw bytes).
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}

# The typed ``contents`` field that carries each datatype (FP16 travels raw only).
CONTENTS_FIELDS: dict[str, str] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

# The range of each integer datatype (typed contents travel in wider protobuf fields).
INTEGER_RANGES = {name: np.iinfo(dtype) for name, dtype in NUMPY_DTYPES.items() if dtype.kind in "iu"}

LENGTH_PREFIX = struct.Struct("<I")


def pack_bytes(items: Iterable[bytes]) -> bytes:
    """The raw contents of BYTES elements: each prefixed by its length."""
    parts = []
    for item in items:
        parts.append(LENGTH_PREFIX.pack(len(item)))
        parts.append(item)
    return b"".join(parts)


def encode_raw(datatype: str, array: np.ndarray) -> bytes:
    """An array's raw contents as the datatype lays them out."""
    if datatype == "BYTES":
        return pack_bytes(array.reshape(-1))
    return np.ascontiguousarray(array, dtype=NUMPY_DTYPES[datatype]).tobytes()
