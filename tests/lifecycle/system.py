"""A model repository with several versions, and helpers to reach every worker of a service."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
from protoserve.inference.v1 import inference_service_pb2_grpc
from protoserve.models.v1 import model_service_pb2 as pb
from protoserve.models.v1 import model_service_pb2_grpc

from tests.harness import CONNECTIONS_FOR_EVERY_WORKER
from tests.inference.rows import predict_request

IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
FRESH = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own: the kernel picks its worker
Stubs = tuple[model_service_pb2_grpc.ModelServiceStub, inference_service_pb2_grpc.InferenceServiceStub]


def add_version(built: Path, repository: Path, name: str, version: str) -> None:
    """Copy the built iris-knn as name/version the way training writes one: into a temporary
    directory, then renamed into place in one step."""
    temporary = repository / name / f".tmp-{version}"
    shutil.copytree(built / "iris-knn" / "1", temporary)
    card = json.loads((temporary / "card.json").read_text(encoding="utf-8"))
    (temporary / "card.json").write_text(json.dumps({**card, "name": name, "version": version}), encoding="utf-8")
    os.rename(temporary, repository / name / version)


@contextmanager
def stubs(address: str) -> Iterator[Stubs]:
    with grpc.insecure_channel(address, options=FRESH) as channel:
        yield model_service_pb2_grpc.ModelServiceStub(channel), inference_service_pb2_grpc.InferenceServiceStub(channel)


def on_every_worker(address: str, check: Callable[[model_service_pb2_grpc.ModelServiceStub,
                                                   inference_service_pb2_grpc.InferenceServiceStub], bool]) -> bool:
    """check holds on CONNECTIONS_FOR_EVERY_WORKER connections of their own, so on every worker."""
    for _ in range(CONNECTIONS_FOR_EVERY_WORKER):
        with stubs(address) as (models, inference):
            if not check(models, inference):
                return False
    return True


def version_states(models: model_service_pb2_grpc.ModelServiceStub, model: str) -> dict[str, str]:
    listing = models.ListVersions(pb.ListVersionsRequest(model=model), timeout=30)
    return {v.version: pb.VersionState.Name(v.state) for v in listing.versions}


def answered_by(inference: inference_service_pb2_grpc.InferenceServiceStub, model: str, version: str = "") -> str:
    return str(inference.Predict(predict_request(model, [IRIS_ROW], version), timeout=30).version)
