"""Building Explain requests and reading the answers in tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import struct_pb2
from protoserve.explain.v1 import explain_service_pb2 as pb


def explain_request(model: str, rows: Sequence[Mapping[str, Any]], label: str = "", top_k: int = 0) -> pb.ExplainRequest:
    request = pb.ExplainRequest(model=model, label=label, top_k=top_k)
    for row in rows:
        struct = struct_pb2.Struct()
        struct.update(dict(row))
        request.rows.append(struct)
    return request


def additivity_gap(row: pb.RowExplanation) -> float:
    """|base + every attribution (those cut by top_k too) - the model's output|."""
    total = row.base_value + sum(a.value for a in row.attributions) + row.omitted_sum
    return abs(total - row.output_value)


def attribution(row: pb.RowExplanation, name: str) -> pb.Attribution:
    return next(a for a in row.attributions if a.name == name)
