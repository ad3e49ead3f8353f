"""The request bodies of the benchmark, built once per (model, rows) and sent as bytes.

- Open Inference Protocol gRPC (protoserve, MLServer, the floors): a model of numbers fitted on
  numpy takes one FP64 tensor `input` [rows, features]; a model fitted on a DataFrame takes one
  tensor per column as MLServer's pandas codec encodes a DataFrame: the request's
  `parameters.content_type` "pd", each column [rows] with its own datatype (FP64, INT64, BOOL, or
  BYTES with `content_type` "str" so that MLServer decodes it to str, not bytes).
- JSON rows (Flask, BentoML): {"rows": [...]}, records (column: value) for a DataFrame model,
  lists of numbers otherwise, the body a hand-written service takes.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from inference import grpc_predict_v2_pb2 as v2

from bench.user_models import BenchModel

MATRIX_INPUT = "input"
# The Open Inference Protocol datatype of a column, by numpy dtype kind; anything else is BYTES.
DATATYPES = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL"}
CONTENTS = {"FP64": "fp64_contents", "INT64": "int64_contents", "BOOL": "bool_contents"}


def grpc_request(model: BenchModel, rows: int, outputs: tuple[str, ...] = ()) -> bytes:
    """A serialized ModelInferRequest of `rows` rows, asking for `outputs` (all when empty)."""
    request = v2.ModelInferRequest(model_name=model.name)
    frame = model.rows(rows)
    if model.columns:
        request.parameters["content_type"].string_param = "pd"
        for name in frame.columns:
            add_column(request, str(name), frame[name])
    else:
        tensor = request.inputs.add(name=MATRIX_INPUT, datatype="FP64", shape=list(frame.shape))
        tensor.contents.fp64_contents.extend(frame.to_numpy(np.float64).ravel().tolist())
    for name in outputs:
        request.outputs.add(name=name)
    return request.SerializeToString()


def add_column(request: v2.ModelInferRequest, name: str, column: pd.Series) -> None:
    datatype = DATATYPES.get(column.dtype.kind, "BYTES")
    tensor = request.inputs.add(name=name, datatype=datatype, shape=[len(column)])
    if datatype == "BYTES":
        tensor.parameters["content_type"].string_param = "str"
        tensor.contents.bytes_contents.extend(str(value).encode() for value in column)
    else:
        getattr(tensor.contents, CONTENTS[datatype]).extend(column.tolist())


def json_rows(model: BenchModel, rows: int) -> bytes:
    """{"rows": [...]}: records for a DataFrame model, lists of numbers otherwise."""
    frame = model.rows(rows)
    body = frame.to_dict(orient="records") if model.columns else frame.to_numpy(np.float64).tolist()
    return json.dumps({"rows": body}).encode()


def grpc_probabilities(answer: bytes) -> np.ndarray:
    """The class probabilities of a serialized ModelInferResponse (protoserve's `probabilities`,
    MLServer's `predict_proba`), from typed or raw contents."""
    response = v2.ModelInferResponse.FromString(answer)
    for i, output in enumerate(response.outputs):
        if output.name in ("probabilities", "predict_proba"):
            if response.raw_output_contents:
                values = np.frombuffer(response.raw_output_contents[i], dtype="<f8")
            else:
                values = np.array(output.contents.fp64_contents)
            return values.reshape(list(output.shape))
    raise ValueError(f"no probabilities in the answer's outputs {[o.name for o in response.outputs]}")


def json_probabilities(answer: bytes) -> np.ndarray:
    """The class probabilities of a JSON answer: Flask's {"probabilities": [...]}, BentoML's bare list."""
    body = json.loads(answer)
    return np.array(body["probabilities"] if isinstance(body, dict) else body, dtype=np.float64)
