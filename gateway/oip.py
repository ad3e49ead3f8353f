"""Open Inference Protocol (KServe v2) REST, forwarded to the inference service's v2 gRPC API.

Errors answer ``{"error": "..."}`` with the HTTP status of the gRPC code, as the spec and
tritonclient expect. Every call here changes nothing except load/unload, so the rest are retried.
"""

from __future__ import annotations

from typing import Any

import orjson
from inference import grpc_predict_v2_pb2 as v2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.calls import Caller, read_body
from gateway.errors import HttpError
from gateway.oip_tensors import build_infer_request, infer_response, tensor_metadata
from gateway.transcode import parse_json

SERVICE = "/inference.GRPCInferenceService/"
HEADER_LENGTH = "inference-header-content-length"


def error_response(error: HttpError) -> JSONResponse:
    return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers())


class OipApi:
    def __init__(self, caller: Caller, max_body_bytes: int) -> None:
        self.caller = caller
        self.max_body_bytes = max_body_bytes

    async def _call(self, request: Request, name: str, message: Any, response_class: Any, idempotent: bool = True,
                    metadata: list[tuple[str, str]] | None = None) -> Any:
        return await self.caller.call(request, SERVICE + name, message, response_class.FromString, idempotent, metadata)

    async def live(self, request: Request) -> Response:
        response = await self._call(request, "ServerLive", v2.ServerLiveRequest(), v2.ServerLiveResponse)
        return JSONResponse({"live": response.live}, status_code=200 if response.live else 400)

    async def ready(self, request: Request) -> Response:
        response = await self._call(request, "ServerReady", v2.ServerReadyRequest(), v2.ServerReadyResponse)
        return JSONResponse({"ready": response.ready}, status_code=200 if response.ready else 400)

    async def server_metadata(self, request: Request) -> Response:
        response = await self._call(request, "ServerMetadata", v2.ServerMetadataRequest(), v2.ServerMetadataResponse)
        return JSONResponse({"name": response.name, "version": response.version, "extensions": list(response.extensions)})

    @staticmethod
    def _model(request: Request) -> tuple[str, str]:
        return request.path_params["name"], request.path_params.get("version", "")

    async def model_metadata(self, request: Request) -> Response:
        name, version = self._model(request)
        message = v2.ModelMetadataRequest(name=name, version=version)
        r = await self._call(request, "ModelMetadata", message, v2.ModelMetadataResponse)
        return JSONResponse({
            "name": r.name, "versions": list(r.versions), "platform": r.platform,
            "inputs": tensor_metadata(r.inputs), "outputs": tensor_metadata(r.outputs),
        })

    async def model_ready(self, request: Request) -> Response:
        name, version = self._model(request)
        r = await self._call(request, "ModelReady", v2.ModelReadyRequest(name=name, version=version), v2.ModelReadyResponse)
        return JSONResponse({"name": name, "ready": r.ready}, status_code=200 if r.ready else 400)

    async def infer(self, request: Request) -> Response:
        name, version = self._model(request)
        metadata = self.caller.authorize(request, SERVICE + "ModelInfer")  # refuse before reading the body
        raw = await read_body(request, self.max_body_bytes)
        header_length = request.headers.get(HEADER_LENGTH)
        if header_length is None:
            kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
            if kind not in ("application/json", "text/json", "application/octet-stream", ""):
                raise HttpError(415, "INVALID_ARGUMENT", f"the body must be application/json, not {kind}")
            header, binary = raw, b""
        else:
            if not header_length.isdigit() or int(header_length) > len(raw):
                raise HttpError.bad_request(f"{HEADER_LENGTH} {header_length!r} does not fit the body")
            header, binary = raw[:int(header_length)], raw[int(header_length):]
        message, binary_outputs, all_binary = build_infer_request(name, version, parse_json(header), binary)
        response = await self._call(request, "ModelInfer", message, v2.ModelInferResponse, metadata=metadata)
        body, chunks = infer_response(response, binary_outputs, all_binary)
        text = orjson.dumps(body)
        if not chunks:
            return Response(text, media_type="application/json")
        return Response(text + chunks, media_type="application/octet-stream", headers={HEADER_LENGTH: str(len(text))})

    async def repository_index(self, request: Request) -> Response:
        raw = await read_body(request, self.max_body_bytes)
        body = parse_json(raw)
        if not isinstance(body, dict) or not isinstance(body.get("ready", False), bool):
            raise HttpError.bad_request('the body must be a JSON object such as {"ready": true}')
        ready = body.get("ready", False)
        r = await self._call(request, "RepositoryIndex", v2.RepositoryIndexRequest(ready=bool(ready)), v2.RepositoryIndexResponse)
        return JSONResponse([{"name": m.name, "version": m.version, "state": m.state, "reason": m.reason} for m in r.models])

    async def load(self, request: Request) -> Response:
        message = v2.RepositoryModelLoadRequest(model_name=request.path_params["name"])
        await self._call(request, "RepositoryModelLoad", message, v2.RepositoryModelLoadResponse, idempotent=False)
        return Response(status_code=200)

    async def unload(self, request: Request) -> Response:
        message = v2.RepositoryModelUnloadRequest(model_name=request.path_params["name"])
        await self._call(request, "RepositoryModelUnload", message, v2.RepositoryModelUnloadResponse, idempotent=False)
        return Response(status_code=200)

    def routes(self) -> list[Route]:
        model = "/v2/models/{name}"
        versioned = "/v2/models/{name}/versions/{version}"
        return [
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            Route("/v2", self.server_metadata, methods=["GET"]),
            Route(model, self.model_metadata, methods=["GET"]),
            Route(versioned, self.model_metadata, methods=["GET"]),
            Route(model + "/ready", self.model_ready, methods=["GET"]),
            Route(versioned + "/ready", self.model_ready, methods=["GET"]),
            Route(model + "/infer", self.infer, methods=["POST"]),
            Route(versioned + "/infer", self.infer, methods=["POST"]),
            Route("/v2/repository/index", self.repository_index, methods=["POST"]),
            Route("/v2/repository/models/{name}/load", self.load, methods=["POST"]),
            Route("/v2/repository/models/{name}/unload", self.unload, methods=["POST"]),
        ]
