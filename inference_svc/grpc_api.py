"""The gRPC adapter for protoserve.inference.v1.InferenceService: messages in, core call, messages out."""

from __future__ import annotations

import grpc
from protoserve.inference.v1 import inference_service_pb2 as pb
from protoserve.inference.v1 import inference_service_pb2_grpc as pb_grpc

from inference_svc.batching import deadline_after
from inference_svc.converters import result_to_proto, status_to_summary_fields
from inference_svc.core import InferenceCore
from protoserve_models.messages import card_to_proto, struct_to_row, versions_to_proto
from protoserve_runtime.grpc_errors import translate_errors
from protoserve_runtime.server import ServiceBinding

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["InferenceService"].full_name


class InferenceServicer(pb_grpc.InferenceServiceServicer):
    def __init__(self, core: InferenceCore) -> None:
        self._core = core

    @translate_errors
    async def Predict(self, request: pb.PredictRequest, context: grpc.aio.ServicerContext) -> pb.PredictResponse:
        rows = [struct_to_row(row) for row in request.rows]
        deadline = deadline_after(context.time_remaining())
        result = await self._core.predict_rows(
            request.model, request.version or None, rows, deadline, skip_cache=request.skip_cache
        )
        await context.send_initial_metadata((("protoserve-cache", "hit" if result.cached else "miss"),))
        return pb.PredictResponse(
            model=result.card.name, version=result.card.version, predictions=result_to_proto(result)
        )

    @translate_errors
    async def ListModels(self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(
            models=[pb.ModelSummary(**status_to_summary_fields(s)) for s in self._core.list_models()]  # type: ignore[arg-type]
        )

    @translate_errors
    async def GetModel(self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext) -> pb.GetModelResponse:
        card, versions = self._core.describe(request.model, request.version or None)
        return pb.GetModelResponse(card=card_to_proto(card), versions=versions_to_proto(versions))


def binding(core: InferenceCore) -> ServiceBinding:
    servicer = InferenceServicer(core)
    return ServiceBinding(SERVICE_NAME, lambda server: pb_grpc.add_InferenceServiceServicer_to_server(servicer, server))
