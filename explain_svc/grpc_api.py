"""The gRPC adapter for protoserve.explain.v1.ExplainService: messages in, core call, messages out."""

from __future__ import annotations

import grpc
from protoserve.explain.v1 import explain_service_pb2 as pb
from protoserve.explain.v1 import explain_service_pb2_grpc as pb_grpc

from explain_svc.attributions import Attribution
from explain_svc.core import ExplainCore, ExplainResult
from protoserve_models.messages import predictions_to_proto, struct_to_row
from protoserve_runtime.grpc_errors import translate_errors
from protoserve_runtime.server import ServiceBinding

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ExplainService"].full_name

_METHODS = {
    "tree_shap": pb.EXPLANATION_METHOD_TREE_SHAP,
    "linear_shap": pb.EXPLANATION_METHOD_LINEAR_SHAP,
    "permutation_shap": pb.EXPLANATION_METHOD_PERMUTATION_SHAP,
    "exact_shap": pb.EXPLANATION_METHOD_EXACT_SHAP,
}
_SPACES = {
    "probability": pb.OUTPUT_SPACE_PROBABILITY,
    "margin": pb.OUTPUT_SPACE_MARGIN,
    "value": pb.OUTPUT_SPACE_VALUE,
}
_KINDS = {
    "feature": pb.ATTRIBUTION_KIND_FEATURE,
    "token": pb.ATTRIBUTION_KIND_TOKEN,
    "derived": pb.ATTRIBUTION_KIND_DERIVED,
}


def _attribution(a: Attribution) -> pb.Attribution:
    return pb.Attribution(
        name=a.name, kind=_KINDS[a.kind], value=a.value, feature_value=a.feature_value, start=a.start, end=a.end,  # type: ignore[arg-type]
        feature_text=a.feature_text,
    )


def result_to_proto(result: ExplainResult) -> pb.ExplainResponse:
    predictions = predictions_to_proto(result.card, result.predictions)
    return pb.ExplainResponse(
        model=result.card.name,
        version=result.card.version,
        method=_METHODS[result.method.name],  # type: ignore[arg-type]
        output_space=_SPACES[result.method.output_space],  # type: ignore[arg-type]
        background=result.method.background,
        explanations=[
            pb.RowExplanation(
                prediction=prediction,
                label=row.explained.label,
                base_value=row.explained.base_value,
                output_value=row.explained.output_value,
                attributions=[_attribution(a) for a in row.explained.attributions],
                omitted_count=row.omitted_count,
                omitted_sum=row.omitted_sum,
            )
            for prediction, row in zip(predictions, result.rows)
        ],
    )


class ExplainServicer(pb_grpc.ExplainServiceServicer):
    def __init__(self, core: ExplainCore) -> None:
        self._core = core

    @translate_errors
    async def Explain(self, request: pb.ExplainRequest, context: grpc.aio.ServicerContext) -> pb.ExplainResponse:
        rows = [struct_to_row(row) for row in request.rows]
        result = await self._core.explain(request.model, request.version or None, rows, request.top_k, request.label)
        return result_to_proto(result)


def binding(core: ExplainCore) -> ServiceBinding:
    servicer = ExplainServicer(core)
    return ServiceBinding(SERVICE_NAME, lambda server: pb_grpc.add_ExplainServiceServicer_to_server(servicer, server))
