"""The floor of a real v2 server in grpc.aio: the generated Open Inference Protocol servicer whose
ModelInfer parses the request (protobuf, as any server must) and builds the answer protoserve gives
(`label` BYTES [rows], `probabilities` FP64 [rows, 3]) from constants: no model, no validation,
no interceptors. Beside bench/echo_server.py (raw bytes, no parsing), it splits protoserve's CPU
per request into what any grpc.aio v2 server pays and protoserve's own work.

Usage: python bench/proto_floor_server.py PORT
"""

from __future__ import annotations

import asyncio
import sys

import grpc
from inference import grpc_predict_v2_pb2 as v2
from inference import grpc_predict_v2_pb2_grpc as v2_grpc

CLASSES = 3


class Floor(v2_grpc.GRPCInferenceServiceServicer):
    async def ServerReady(self, request: v2.ServerReadyRequest, context: grpc.aio.ServicerContext) -> v2.ServerReadyResponse:
        return v2.ServerReadyResponse(ready=True)

    async def ModelInfer(self, request: v2.ModelInferRequest, context: grpc.aio.ServicerContext) -> v2.ModelInferResponse:
        rows = request.inputs[0].shape[0] if request.inputs and request.inputs[0].shape else 1
        response = v2.ModelInferResponse(model_name=request.model_name, model_version="1", id=request.id)
        label = response.outputs.add(name="label", datatype="BYTES", shape=[rows])
        label.contents.bytes_contents.extend([b"setosa"] * rows)
        probabilities = response.outputs.add(name="probabilities", datatype="FP64", shape=[rows, CLASSES])
        probabilities.contents.fp64_contents.extend([0.0] * (rows * CLASSES))
        return response


async def serve(port: int) -> None:
    server = grpc.aio.server()
    v2_grpc.add_GRPCInferenceServiceServicer_to_server(Floor(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
