"""Helpers for Open Inference Protocol tests: rows from the model cards, reference predictions.

These tests talk through tritonclient only (its own copy of the protocol's messages). A process
cannot import both tritonclient.grpc and the service's generated ``inference`` module (the two
register the same protobuf names), so no test imports the service's v2 modules in-process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tests.inference.rows import predict_request


def card(model_repository: Path, model: str) -> dict[str, Any]:
    return json.loads((model_repository / model / "1" / "card.json").read_text(encoding="utf-8"))


def sample_rows(model_repository: Path, model: str, count: int = 5) -> list[dict[str, Any]]:
    """The first rows of the card's reference sample, as Predict rows."""
    columns = card(model_repository, model)["reference_sample"]
    names = [f["name"] for f in card(model_repository, model)["inputs"]]
    return [{name: columns[name][i] for name in names} for i in range(count)]


def matrix(model_repository: Path, model: str, rows: list[dict[str, Any]], dtype: Any = np.float64) -> np.ndarray:
    names = [f["name"] for f in card(model_repository, model)["inputs"]]
    return np.array([[row[n] for n in names] for row in rows], dtype=dtype)


def reference(inference_stub: Any, model: str, rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """What protoserve's own Predict answers for rows, as v2 output arrays."""
    response = inference_stub.Predict(predict_request(model, rows), timeout=30)
    predictions = list(response.predictions)
    if predictions[0].HasField("classification"):
        return {
            "label": np.array([p.classification.label.encode() for p in predictions], dtype=object),
            "probabilities": np.array(
                [[q.probability for q in p.classification.probabilities] for p in predictions]
            ),
        }
    return {
        "mean": np.array([p.regression.value for p in predictions]),
        "variance": np.array([p.regression.variance for p in predictions]),
    }
