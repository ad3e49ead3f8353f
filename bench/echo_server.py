"""The transport ceiling: a bare grpc.aio server that answers ModelInfer with fixed bytes.

No protobuf parsing and no model: what a Python gRPC server costs per call on its own.
Usage: python bench/echo_server.py PORT RESPONSE_FILE
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc

READY_TRUE = b"\x08\x01"


async def serve(port: int, response: bytes) -> None:
    async def infer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return response

    async def ready(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return READY_TRUE

    handler = grpc.method_handlers_generic_handler(
        "inference.GRPCInferenceService",
        {
            "ModelInfer": grpc.unary_unary_rpc_method_handler(infer),
            "ServerReady": grpc.unary_unary_rpc_method_handler(ready),
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), Path(sys.argv[2]).read_bytes()))
