"""Server reflection answers under grpc.reflection.v1 (newer clients ask it first) and v1alpha alike."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

VERSIONS = ("grpc.reflection.v1", "grpc.reflection.v1alpha")


def ask(address: str, version: str, request: reflection_pb2.ServerReflectionRequest) -> reflection_pb2.ServerReflectionResponse:
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(
            f"/{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        (response,) = list(call(iter([request]), timeout=10))
    return response


@pytest.mark.parametrize("version", VERSIONS)
def test_services_are_listed_and_described(inference_address: str, version: str) -> None:
    listed = ask(inference_address, version, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listed.list_services_response.service}
    assert {"protoserve.inference.v1.InferenceService", "inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names
    found = ask(inference_address, version, reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="protoserve.inference.v1.InferenceService"))
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw) for raw in found.file_descriptor_response.file_descriptor_proto]
    assert any(f.package == "protoserve.inference.v1" and f.service for f in files)
