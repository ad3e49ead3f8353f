"""Explicit converters between the model package's types (cards, versions, predictions) and the
common protobuf messages every service answers with."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import struct_pb2
from protoserve.common.v1 import model_pb2, prediction_pb2

from protoserve_models.card import ModelCard
from protoserve_models.model import PredictionBatch
from protoserve_models.repository import VersionEntry
from protoserve_models.version_states import common_enum_name

_TASKS = {
    "classification": model_pb2.TASK_CLASSIFICATION,
    "regression": model_pb2.TASK_REGRESSION,
}
_FEATURE_TYPES = {"double": model_pb2.FEATURE_TYPE_DOUBLE, "string": model_pb2.FEATURE_TYPE_STRING}


def _value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {}  # only its type matters: validation refuses nested values
    if kind == "list_value":
        return []
    return None  # null, or a Value with no kind set (which some clients send)


def struct_to_row(row: struct_pb2.Struct) -> dict[str, Any]:
    """A request row as plain Python values; never raises, whatever the client sent."""
    return {key: _value_to_python(value) for key, value in row.fields.items()}


def task_to_proto(task: str) -> int:
    return _TASKS.get(task, model_pb2.TASK_UNSPECIFIED)


def card_to_proto(card: ModelCard) -> model_pb2.ModelCard:
    return model_pb2.ModelCard(
        name=card.name,
        version=card.version,
        task=task_to_proto(card.task),  # type: ignore[arg-type]
        description=card.description,
        inputs=[
            model_pb2.FeatureSpec(
                name=f.name, type=_FEATURE_TYPES[f.type], description=f.description, max_length=f.max_length  # type: ignore[arg-type]
            )
            for f in card.inputs
        ],
        labels=list(card.labels),
        metrics=[model_pb2.Metric(name=k, value=v) for k, v in sorted(card.metrics.items())],
        training_data=card.training_data,
        algorithm=card.algorithm,
        deterministic=card.deterministic,
    )


def versions_to_proto(entries: Iterable[VersionEntry]) -> list[model_pb2.ModelVersionStatus]:
    return [
        model_pb2.ModelVersionStatus(
            version=e.version, state=model_pb2.ModelVersionState.Value(common_enum_name(e.state)), reason=e.reason  # type: ignore[arg-type]
        )
        for e in entries
    ]


def predictions_to_proto(
    card: ModelCard, out: PredictionBatch, prediction_ids: Sequence[str] = ()
) -> list[prediction_pb2.Prediction]:
    """One Prediction message per row, built from column arrays with as few Python calls as we can."""
    ids = prediction_ids or [""] * len(out)
    if out.probabilities is not None and out.label_indices is not None:
        labels = card.labels
        probability_rows = out.probabilities.tolist()
        predictions = []
        for index, row, prediction_id in zip(out.label_indices.tolist(), probability_rows, ids):
            predictions.append(
                prediction_pb2.Prediction(
                    prediction_id=prediction_id,
                    classification=prediction_pb2.Classification(
                        label=labels[index],
                        score=row[index],
                        probabilities=[
                            prediction_pb2.ClassProbability(label=label, probability=p)
                            for label, p in zip(labels, row)
                        ],
                    )
                )
            )
        return predictions
    assert out.values is not None and out.variances is not None
    return [
        prediction_pb2.Prediction(
            prediction_id=prediction_id,
            regression=prediction_pb2.Regression(value=v, variance=var, standard_deviation=var**0.5),
        )
        for v, var, prediction_id in zip(out.values.tolist(), out.variances.tolist(), ids)
    ]
