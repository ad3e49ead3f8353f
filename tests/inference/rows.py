"""Building Predict requests in tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import struct_pb2
from protoserve.inference.v1 import inference_service_pb2 as pb


def predict_request(model: str, rows: Sequence[Mapping[str, Any]], version: str = "") -> pb.PredictRequest:
    request = pb.PredictRequest(model=model, version=version)
    for row in rows:
        struct = struct_pb2.Struct()
        struct.update(dict(row))
        request.rows.append(struct)
    return request
