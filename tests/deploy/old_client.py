"""A client built from an earlier commit's protos (its generated code comes first on sys.path).

Run as ``python old_client.py GEN_DIR ADDRESS``; prints what it saw as JSON.
"""

from __future__ import annotations

import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from google.protobuf import struct_pb2  # noqa: E402
from inference import grpc_predict_v2_pb2 as v2  # noqa: E402
from inference import grpc_predict_v2_pb2_grpc as v2_grpc  # noqa: E402
from protoserve.inference.v1 import inference_service_pb2 as pb  # noqa: E402
from protoserve.inference.v1 import inference_service_pb2_grpc as pb_grpc  # noqa: E402

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}

with grpc.insecure_channel(sys.argv[2]) as channel:
    stub = pb_grpc.InferenceServiceStub(channel)
    row = struct_pb2.Struct()
    row.update(ROW)
    predicted = stub.Predict(pb.PredictRequest(model="iris-knn", rows=[row]), timeout=30)
    models = stub.ListModels(pb.ListModelsRequest(), timeout=30)
    metadata = v2_grpc.GRPCInferenceServiceStub(channel).ServerMetadata(v2.ServerMetadataRequest(), timeout=30)
print(json.dumps({
    "generated_from": pb.__file__,
    "label": predicted.predictions[0].classification.label,
    "models": sorted(m.name for m in models.models),
    "server": metadata.name,
    "version": metadata.version,
}))
