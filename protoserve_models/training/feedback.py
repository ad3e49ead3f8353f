"""Labeled examples as training rows: the model's stream that the monitoring service writes
(monitoring_svc/labeled_examples.py), read from the oldest entry to the newest."""

from __future__ import annotations

from typing import Any

import numpy as np
import redis
from google.protobuf.message import DecodeError
from protoserve.monitoring.v1 import labeled_example_pb2

from protoserve_models.card import ModelCard
from protoserve_models.training.data import Part

EXAMPLE_FIELD = b"b"
READ_COUNT = 1000


def example_stream(stream_prefix: str, model: str) -> str:
    return f"{stream_prefix}:{model}"


def count_examples(client: redis.Redis, stream_prefix: str, model: str) -> int:
    return int(client.xlen(example_stream(stream_prefix, model)))


def read_examples(client: redis.Redis, stream_prefix: str, model: str) -> list[labeled_example_pb2.LabeledExample]:
    """Every example in the stream, the latest feedback per prediction."""
    stream = example_stream(stream_prefix, model)
    by_prediction: dict[str, labeled_example_pb2.LabeledExample] = {}
    start = "-"
    while True:
        entries: Any = client.xrange(stream, min=start, count=READ_COUNT)
        for _, fields in entries:
            try:
                example = labeled_example_pb2.LabeledExample.FromString(fields[EXAMPLE_FIELD])
            except (KeyError, DecodeError):
                continue
            by_prediction[example.prediction_id] = example
        if len(entries) < READ_COUNT:
            return list(by_prediction.values())
        start = "(" + entries[-1][0].decode()


def feedback_part(card: ModelCard, examples: list[labeled_example_pb2.LabeledExample]) -> tuple[Part, int]:
    """The examples that fit the model's inputs and answers, as rows; and how many did not."""
    texts: list[str] = []
    rows: list[list[float]] = []
    truths: list[Any] = []
    width = len(card.inputs)
    for example in examples:
        truth = example.WhichOneof("truth")
        if card.task == "classification":
            if truth != "label" or example.label not in card.labels:
                continue
            answer: Any = example.label
        else:
            if truth != "value" or not np.isfinite(example.value):
                continue
            answer = example.value
        if card.is_text:
            if example.numeric_inputs:
                continue
            texts.append(example.text_input)
        else:
            if len(example.numeric_inputs) != width or not np.isfinite(example.numeric_inputs).all():
                continue
            rows.append(list(example.numeric_inputs))
        truths.append(answer)
    x = np.array(texts, dtype=object) if card.is_text else np.array(rows, dtype=np.float64).reshape(-1, width)
    y = np.array(truths, dtype=object if card.task == "classification" else np.float64)
    return Part("feedback", x, y), len(examples) - len(truths)
