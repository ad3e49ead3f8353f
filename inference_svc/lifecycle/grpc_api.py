"""The gRPC adapter for protoserve.models.v1.ModelService: messages in, lifecycle core call, messages out.

TrainModel and GetTrainingRun are answered by the training side (inference_svc/training/grpc_api.py).
"""

from __future__ import annotations

import grpc
from google.protobuf import json_format
from protoserve.models.v1 import model_service_pb2 as pb
from protoserve.models.v1 import model_service_pb2_grpc as pb_grpc

from inference_svc.lifecycle.core import LifecycleCore, ModelVersions, VersionInfo
from inference_svc.training import grpc_api as training_api
from inference_svc.training.core import TrainingCore
from protoserve_models.serving_state import Policy
from protoserve_models.version_states import lifecycle_enum_name
from protoserve_runtime.grpc_errors import translate_errors
from protoserve_runtime.server import ServiceBinding

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ModelService"].full_name

def version_to_proto(info: VersionInfo) -> pb.ModelVersion:
    message = pb.ModelVersion(
        version=info.version, state=pb.VersionState.Value(lifecycle_enum_name(info.state)), is_default=info.is_default,
        traffic_share=info.traffic_share, shadow=info.shadow, metrics=info.metrics, error=info.error,
    )
    if info.training_run:
        json_format.ParseDict(info.training_run, message.training_run, ignore_unknown_fields=True)
    return message


def policy_to_proto(policy: Policy) -> pb.VersionPolicy:
    if policy.kind == "latest":
        return pb.VersionPolicy(latest=pb.VersionPolicy.Latest(count=policy.count))
    if policy.kind == "specific":
        return pb.VersionPolicy(specific=pb.VersionPolicy.Specific(versions=policy.versions))
    return pb.VersionPolicy(all=pb.VersionPolicy.All())


def routes_to_proto(routes: tuple[tuple[str, int], ...]) -> list[pb.TrafficRoute]:
    return [pb.TrafficRoute(version=v, weight=w) for v, w in routes]


def versions_to_proto(listing: ModelVersions) -> pb.ListVersionsResponse:
    return pb.ListVersionsResponse(
        model=listing.model, default_version=listing.default_version, policy=policy_to_proto(listing.policy),
        routes=routes_to_proto(listing.routes), shadow_version=listing.shadow_version,
        versions=[version_to_proto(v) for v in listing.versions],
    )


class ModelServicer(pb_grpc.ModelServiceServicer):
    def __init__(self, core: LifecycleCore, training: TrainingCore | None) -> None:
        self._core = core
        self.training = training  # None without Redis: TrainModel answers UNAVAILABLE

    @translate_errors
    async def TrainModel(self, request: pb.TrainModelRequest, context: grpc.aio.ServicerContext) -> pb.TrainModelResponse:
        return await training_api.train_model(self.training, request)

    @translate_errors
    async def GetTrainingRun(
        self, request: pb.GetTrainingRunRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTrainingRunResponse:
        return await training_api.get_training_run(self.training, request)

    @translate_errors
    async def ListVersions(self, request: pb.ListVersionsRequest, context: grpc.aio.ServicerContext) -> pb.ListVersionsResponse:
        return versions_to_proto(self._core.list_versions(request.model))

    @translate_errors
    async def LoadModel(self, request: pb.LoadModelRequest, context: grpc.aio.ServicerContext) -> pb.LoadModelResponse:
        info = await self._core.load_version(request.model, request.version)
        return pb.LoadModelResponse(version=version_to_proto(info))

    @translate_errors
    async def UnloadModel(self, request: pb.UnloadModelRequest, context: grpc.aio.ServicerContext) -> pb.UnloadModelResponse:
        await self._core.unload_version(request.model, request.version)
        return pb.UnloadModelResponse()

    @translate_errors
    async def PromoteVersion(
        self, request: pb.PromoteVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.PromoteVersionResponse:
        previous, version = await self._core.promote(request.model, request.version)
        return pb.PromoteVersionResponse(previous_version=previous, version=version)

    @translate_errors
    async def SetTraffic(self, request: pb.SetTrafficRequest, context: grpc.aio.ServicerContext) -> pb.SetTrafficResponse:
        routes = [(r.version, r.weight) for r in request.routes]
        applied, shadow = await self._core.set_traffic(request.model, routes, request.shadow_version)
        return pb.SetTrafficResponse(routes=routes_to_proto(applied), shadow_version=shadow)

    @translate_errors
    async def SetVersionPolicy(
        self, request: pb.SetVersionPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetVersionPolicyResponse:
        policy = request.policy
        kind = policy.WhichOneof("policy") if request.HasField("policy") else None
        policy_now, versions = await self._core.set_policy(
            request.model, kind, policy.latest.count, list(policy.specific.versions)
        )
        return pb.SetVersionPolicyResponse(policy=policy_to_proto(policy_now), versions=versions)


def binding(servicer: ModelServicer) -> ServiceBinding:
    return ServiceBinding(SERVICE_NAME, lambda server: pb_grpc.add_ModelServiceServicer_to_server(servicer, server))
