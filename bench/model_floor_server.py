"""The floor of running the model itself behind a v2 server: a grpc.aio server with no protoserve
code that loads each fitted estimator (`<name>.joblib` in BENCH_MODEL_DIR), turns a request into
what the estimator was fitted on in the fewest steps -- the `input` FP64 matrix reshaped, or one
tensor per column into a pandas DataFrame (`pd.DataFrame` of the columns) -- and answers
`probabilities` from one `predict_proba` per request: no checks, no batching, no kernels. Beside
proto-floor (the same server with no model), it is what scikit-learn's call costs a v2 server.

Usage: BENCH_MODEL_DIR=dir python bench/model_floor_server.py PORT
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import grpc
import joblib
import numpy as np
import pandas as pd
from inference import grpc_predict_v2_pb2 as v2
from inference import grpc_predict_v2_pb2_grpc as v2_grpc

FIELDS = {"FP64": "fp64_contents", "INT64": "int64_contents", "BOOL": "bool_contents", "BYTES": "bytes_contents"}


def column(tensor: Any) -> list[Any]:
    values = list(getattr(tensor.contents, FIELDS[tensor.datatype]))
    return [v.decode() for v in values] if tensor.datatype == "BYTES" else values


def inputs(request: v2.ModelInferRequest) -> Any:
    if len(request.inputs) == 1 and request.inputs[0].name == "input":
        tensor = request.inputs[0]
        return np.asarray(tensor.contents.fp64_contents, dtype=np.float64).reshape(tuple(tensor.shape))
    return pd.DataFrame({tensor.name: column(tensor) for tensor in request.inputs})


class ModelFloor(v2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, models: dict[str, Any]) -> None:
        self._models = models

    async def ServerReady(self, request: v2.ServerReadyRequest, context: grpc.aio.ServicerContext) -> v2.ServerReadyResponse:
        return v2.ServerReadyResponse(ready=True)

    async def ModelInfer(self, request: v2.ModelInferRequest, context: grpc.aio.ServicerContext) -> v2.ModelInferResponse:
        probabilities = np.asarray(self._models[request.model_name].predict_proba(inputs(request)), dtype=np.float64)
        response = v2.ModelInferResponse(model_name=request.model_name, model_version="1", id=request.id)
        output = response.outputs.add(name="probabilities", datatype="FP64", shape=list(probabilities.shape))
        output.contents.fp64_contents.extend(probabilities.reshape(-1).tolist())
        return response


async def serve(port: int, folder: Path) -> None:
    models = {path.stem: joblib.load(path) for path in folder.glob("*.joblib")}
    server = grpc.aio.server()
    v2_grpc.add_GRPCInferenceServiceServicer_to_server(ModelFloor(models), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), Path(os.environ["BENCH_MODEL_DIR"])))
