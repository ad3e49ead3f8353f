"""TrainModel and GetTrainingRun of protoserve.models.v1.ModelService: messages in, training core
call, messages out. The ModelService servicer (inference_svc/lifecycle/grpc_api.py) delegates here."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from protoserve.models.v1 import model_service_pb2 as pb

from inference_svc.training.core import TrainingCore, TrainRequest
from protoserve_models.training.record import Mode
from protoserve_runtime.errors import Unavailable

_MODES: dict[int, Mode] = {
    pb.PROMOTION_MODE_UNSPECIFIED: "AUTO",
    pb.PROMOTION_MODE_AUTO: "AUTO",
    pb.PROMOTION_MODE_MANUAL: "MANUAL",
}


def run_to_proto(run: dict[str, Any]) -> pb.TrainingRun:
    return json_format.ParseDict(run, pb.TrainingRun(), ignore_unknown_fields=True)


def _core(core: TrainingCore | None) -> TrainingCore:
    if core is None:
        raise Unavailable("training needs Redis for its jobs: set PROTOSERVE_REDIS_URL (protoserve up does)")
    return core


async def train_model(core: TrainingCore | None, request: pb.TrainModelRequest) -> pb.TrainModelResponse:
    data = request.data
    run_id = await _core(core).train(TrainRequest(
        model=request.model,
        recipe=request.recipe,
        parameters=json_format.MessageToDict(request.parameters),
        builtin=data.builtin,
        csv=data.csv,
        label_column=data.label_column,
        feedback=data.feedback,
        mode=_MODES.get(request.promotion, "AUTO"),
        idempotency_key=request.idempotency_key,
    ))
    return pb.TrainModelResponse(run_id=run_id)


async def get_training_run(core: TrainingCore | None, request: pb.GetTrainingRunRequest) -> pb.GetTrainingRunResponse:
    return pb.GetTrainingRunResponse(run=run_to_proto(await _core(core).get(request.run_id)))
