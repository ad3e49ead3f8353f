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


def task_to_proto(task: str) -> int:
    """The Task enum of a card's task ("anomaly_detection" is TASK_ANOMALY_DETECTION)."""
    name = f"TASK_{task.upper()}"
    return model_pb2.Task.Value(name) if name in model_pb2.Task.keys() else model_pb2.TASK_UNSPECIFIED


def feature_type_to_proto(kind: str) -> int:
    return model_pb2.FeatureType.Value(f"FEATURE_TYPE_{kind.upper()}")


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


def card_to_proto(card: ModelCard) -> model_pb2.ModelCard:
    return model_pb2.ModelCard(
        name=card.name,
        version=card.version,
        task=task_to_proto(card.task),  # type: ignore[arg-type]
        description=card.description,
        inputs=[
            model_pb2.FeatureSpec(
                name=f.name, type=feature_type_to_proto(f.type), description=f.description,  # type: ignore[arg-type]
                max_length=f.max_length, nullable=f.nullable, categories=list(f.categories),
            )
            for f in card.inputs
        ],
        labels=list(card.labels),
        metrics=[model_pb2.Metric(name=k, value=v) for k, v in sorted(card.metrics.items())],
        training_data=card.training_data,
        algorithm=card.algorithm,
        deterministic=card.deterministic,
        has_probabilities=card.task == "classification" and card.probabilities,
        outputs=list(card.outputs),
        example_row=example_row(card),
    )


def example_row(card: ModelCard) -> struct_pb2.Struct | None:
    """The first row of the card's reference sample, as a request row; None when it has none."""
    sample = card.reference_sample
    if not all(sample.get(name) for name in card.feature_names):
        return None
    row = struct_pb2.Struct()
    row.update({name: sample[name][0] for name in card.feature_names})
    return row


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
    if card.task == "classification":
        if out.probabilities is not None:
            return _probabilities(card, out, ids)
        return _labels(card, out, ids)
    if card.task == "anomaly_detection":
        assert out.label_indices is not None
        scores = out.scores.tolist() if out.scores is not None else [0.0] * len(out)
        return [
            prediction_pb2.Prediction(
                prediction_id=prediction_id,
                anomaly=prediction_pb2.Anomaly(outlier=index == 1, label=card.labels[index], score=score),
            )
            for index, score, prediction_id in zip(out.label_indices.tolist(), scores, ids)
        ]
    if card.task == "clustering":
        assert out.label_indices is not None
        return [
            prediction_pb2.Prediction(
                prediction_id=prediction_id, cluster=prediction_pb2.Cluster(cluster=index, label=card.labels[index])
            )
            for index, prediction_id in zip(out.label_indices.tolist(), ids)
        ]
    return _regression(card, out, ids)


def _probabilities(card: ModelCard, out: PredictionBatch, ids: Sequence[str]) -> list[prediction_pb2.Prediction]:
    assert out.probabilities is not None and out.label_indices is not None
    labels = card.labels
    predictions = []
    for index, row, prediction_id in zip(out.label_indices.tolist(), out.probabilities.tolist(), ids):
        predictions.append(
            prediction_pb2.Prediction(
                prediction_id=prediction_id,
                classification=prediction_pb2.Classification(
                    label=labels[index],
                    score=row[index],
                    probabilities=[
                        prediction_pb2.ClassProbability(label=label, probability=p) for label, p in zip(labels, row)
                    ],
                ),
            )
        )
    return predictions


def _labels(card: ModelCard, out: PredictionBatch, ids: Sequence[str]) -> list[prediction_pb2.Prediction]:
    """A classifier without probabilities: its label, and its decision scores where it has them."""
    assert out.label_indices is not None
    scores: list[Any] = out.scores.reshape(len(out), -1).tolist() if out.scores is not None else [[]] * len(out)
    return [
        prediction_pb2.Prediction(
            prediction_id=prediction_id,
            classification=prediction_pb2.Classification(label=card.labels[index], decision_scores=row),
        )
        for index, row, prediction_id in zip(out.label_indices.tolist(), scores, ids)
    ]


def _regression(card: ModelCard, out: PredictionBatch, ids: Sequence[str]) -> list[prediction_pb2.Prediction]:
    assert out.values is not None and out.variances is not None
    if card.outputs:  # several named outputs: value is the first, every one is listed
        return [
            prediction_pb2.Prediction(
                prediction_id=prediction_id,
                regression=prediction_pb2.Regression(
                    value=row[0], variance=var[0], standard_deviation=var[0] ** 0.5,
                    outputs=[prediction_pb2.NamedValue(name=name, value=v) for name, v in zip(card.outputs, row)],
                ),
            )
            for row, var, prediction_id in zip(out.values.tolist(), out.variances.tolist(), ids)
        ]
    return [
        prediction_pb2.Prediction(
            prediction_id=prediction_id,
            regression=prediction_pb2.Regression(value=v, variance=var, standard_deviation=var**0.5),
        )
        for v, var, prediction_id in zip(out.values.tolist(), out.variances.tolist(), ids)
    ]
