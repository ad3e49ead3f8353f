"""Prediction events built from column arrays decode as the contract's messages, field by field."""

from __future__ import annotations

import numpy as np
import pytest
from protoserve.monitoring.v1 import prediction_event_pb2 as event_pb

from inference_svc.event_encoding import encode_failure, encode_predictions


def decode(framed: list[bytes]) -> list[event_pb.PredictionEvent]:
    return list(event_pb.PredictionEventBatch.FromString(b"".join(framed)).events)


def test_numeric_classification_rows() -> None:
    inputs = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] * 100)
    ids = [f"req-{i}" for i in range(200)]
    events = decode(encode_predictions("iris-knn", "1", 1.5e9, 0.25, ids, inputs, ("a", "bb", ""),
                                       np.array([0, 2] * 100), None))
    assert len(events) == 200
    second = events[1]
    assert (second.prediction_id, second.model, second.version, second.row_index) == ("req-1", "iris-knn", "1", 1)
    assert (second.time, second.latency_seconds) == (1.5e9, 0.25)
    assert list(second.numeric_inputs) == [6.7, 3.0, 5.2, 2.3]
    assert second.WhichOneof("output") == "label" and second.label == ""  # an empty label still sets the oneof
    assert events[0].label == "a" and events[0].row_index == 0 and events[199].row_index == 199


def test_text_regression_and_failure() -> None:
    texts = np.array(["naïve café", "x" * 300], dtype=object)
    events = decode(encode_predictions("m", "2", 1.0, 0.1, ["a", "b"], texts, (), None, np.array([-1.25, 3e10])))
    assert [e.text_input for e in events] == ["naïve café", "x" * 300]
    assert [e.value for e in events] == [-1.25, 3e10] and events[0].WhichOneof("output") == "value"
    [failed] = decode([encode_failure("m", "", 2.0, 0.001, "INVALID_ARGUMENT")])
    assert (failed.model, failed.error_code, failed.prediction_id) == ("m", "INVALID_ARGUMENT", "")
    assert failed.WhichOneof("output") is None


@pytest.mark.parametrize("features", [1, 17, 300])
def test_long_rows_need_multi_byte_lengths(features: int) -> None:
    inputs = np.random.default_rng(0).normal(size=(3, features))
    events = decode(encode_predictions("m", "1", 0.0, 0.0, ["a", "b", "c"], inputs, None, None, np.zeros(3)))
    assert np.array_equal(np.array([list(e.numeric_inputs) for e in events]), inputs)
