"""Converters from the inference core's own types to protoserve's protobuf messages (the model
package's messages module converts cards, versions and predictions)."""

from __future__ import annotations

from protoserve.common.v1 import model_pb2, prediction_pb2

from inference_svc.core import ModelStatus, PredictResult
from protoserve_models.messages import predictions_to_proto, task_to_proto, versions_to_proto


def status_to_summary_fields(status: ModelStatus) -> dict[str, object]:
    card = status.card
    return {
        "name": status.name,
        "task": task_to_proto(card.task) if card else model_pb2.TASK_UNSPECIFIED,
        "description": card.description if card else "",
        "default_version": status.default_version or "",
        "versions": versions_to_proto(status.versions),
    }


def result_to_proto(result: PredictResult) -> list[prediction_pb2.Prediction]:
    return predictions_to_proto(result.card, result.outputs, result.prediction_ids)
