"""The gRPC adapter for the Open Inference Protocol (KServe v2, ``inference.GRPCInferenceService``).

Messages in, one call into the same InferenceCore that protoserve's own Predict uses, messages
out. A request whose inputs came raw is answered raw. The model-repository extension
(index, load, unload) works on the one repository this service serves; its name is "" or "models".
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from inference import grpc_predict_v2_pb2 as v2
from inference import grpc_predict_v2_pb2_grpc as v2_grpc

import inference_svc
from inference_svc.batching import deadline_after
from inference_svc.core import InferenceCore
from inference_svc.lifecycle.core import LifecycleCore
from inference_svc.tensor_inputs import TensorSpec, input_specs, output_datatypes, output_specs
from inference_svc.tensors import decode_inputs, encode_output
from protoserve_models.repository import VersionState, check_model_name, check_version
from protoserve_models.version_states import STATE_NAMES
from protoserve_runtime.errors import NotFound
from protoserve_runtime.grpc_errors import translate_errors
from protoserve_runtime.server import ServiceBinding

SERVICE_NAME = v2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
SERVER_NAME = "protoserve"
EXTENSIONS = ["model_repository"]
PLATFORM = "sklearn"
REPOSITORY_NAMES = ("", "models")


def _server_version() -> str:
    """The inference service's own version (as GetServerInfo reports it), not the repository's."""
    return inference_svc.__version__


def _tensor_metadata(specs: list[TensorSpec]) -> list[v2.ModelMetadataResponse.TensorMetadata]:
    return [v2.ModelMetadataResponse.TensorMetadata(name=s.name, datatype=s.datatype, shape=s.shape) for s in specs]


def _model_and_version(name: str, version: str) -> tuple[str, str | None]:
    check_model_name(name, "model_name")
    return name, (check_version(version, "model_version") if version else None)


def _check_repository(name: str) -> None:
    if name not in REPOSITORY_NAMES:
        raise NotFound(f"repository {name!r} not found; this service has one, named 'models'")


class V2InferenceServicer(v2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, core: InferenceCore, ready: Callable[[], bool], lifecycle: LifecycleCore) -> None:
        self._core = core
        self._lifecycle = lifecycle  # load and unload go through the serving state every worker follows
        self._ready = ready
        self._version = _server_version()

    async def ServerLive(self, request: v2.ServerLiveRequest, context: grpc.aio.ServicerContext) -> v2.ServerLiveResponse:
        return v2.ServerLiveResponse(live=True)

    async def ServerReady(self, request: v2.ServerReadyRequest, context: grpc.aio.ServicerContext) -> v2.ServerReadyResponse:
        return v2.ServerReadyResponse(ready=self._ready())

    @translate_errors
    async def ModelReady(self, request: v2.ModelReadyRequest, context: grpc.aio.ServicerContext) -> v2.ModelReadyResponse:
        check_model_name(request.name, "name")
        status = self._core.model_status(request.name)
        wanted = request.version or status.default_version
        entry = next((e for e in status.versions if e.version == wanted), None)
        if request.version and entry is None:
            raise NotFound(f"model {request.name!r} has no version {request.version!r}")
        return v2.ModelReadyResponse(ready=entry is not None and entry.state is VersionState.READY)

    async def ServerMetadata(
        self, request: v2.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> v2.ServerMetadataResponse:
        return v2.ServerMetadataResponse(name=SERVER_NAME, version=self._version, extensions=EXTENSIONS)

    @translate_errors
    async def ModelMetadata(
        self, request: v2.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> v2.ModelMetadataResponse:
        check_model_name(request.name, "name")
        if request.version:
            check_version(request.version, "version")
        card, versions = self._core.describe(request.name, request.version or None)
        return v2.ModelMetadataResponse(
            name=card.name,
            versions=[e.version for e in versions if e.state is VersionState.READY],
            platform=PLATFORM,
            inputs=_tensor_metadata(input_specs(card)),
            outputs=_tensor_metadata(output_specs(card)),
        )

    @translate_errors
    async def ModelInfer(self, request: v2.ModelInferRequest, context: grpc.aio.ServicerContext) -> v2.ModelInferResponse:
        model, version = _model_and_version(request.model_name, request.model_version)
        tensors, raw = decode_inputs(request)
        requested = [o.name for o in request.outputs] if request.outputs else ()
        result = await self._core.predict_tensors(
            model, version, tensors, requested, deadline_after(context.time_remaining())
        )
        card = result.card
        response = v2.ModelInferResponse(model_name=card.name, model_version=card.version, id=request.id)
        for key, value in request.parameters.items():
            response.parameters[key].CopyFrom(value)
        datatypes = output_datatypes(card)
        for name, array in result.outputs.items():
            encode_output(response, name, datatypes[name], array, raw)
        return response

    @translate_errors
    async def RepositoryIndex(
        self, request: v2.RepositoryIndexRequest, context: grpc.aio.ServicerContext
    ) -> v2.RepositoryIndexResponse:
        _check_repository(request.repository_name)
        response = v2.RepositoryIndexResponse()
        for status in self._core.list_models():
            for entry in status.versions:
                if request.ready and entry.state is not VersionState.READY:
                    continue
                response.models.add(
                    name=status.name, version=entry.version, state=STATE_NAMES[entry.state].repository_index, reason=entry.reason
                )
        return response

    @translate_errors
    async def RepositoryModelLoad(
        self, request: v2.RepositoryModelLoadRequest, context: grpc.aio.ServicerContext
    ) -> v2.RepositoryModelLoadResponse:
        _check_repository(request.repository_name)
        await self._lifecycle.load_model(check_model_name(request.model_name, "model_name"))
        return v2.RepositoryModelLoadResponse()

    @translate_errors
    async def RepositoryModelUnload(
        self, request: v2.RepositoryModelUnloadRequest, context: grpc.aio.ServicerContext
    ) -> v2.RepositoryModelUnloadResponse:
        _check_repository(request.repository_name)
        await self._lifecycle.unload_model(check_model_name(request.model_name, "model_name"))
        return v2.RepositoryModelUnloadResponse()


def binding(core: InferenceCore, ready: Callable[[], bool], lifecycle: LifecycleCore) -> ServiceBinding:
    servicer = V2InferenceServicer(core, ready, lifecycle)
    return ServiceBinding(SERVICE_NAME, lambda server: v2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server))
