"""A property-based fuzzer of protobuf requests sent straight to gRPC services.

Requests are drawn by hypothesis from each RPC's request descriptor, generically, so a new RPC
is fuzzed without a line here: wrong shapes and dtypes, huge and empty repeated fields, NaN and
infinities, extreme integers, deeply nested Struct/JSON, and field values biased towards the
model names and feature names the server knows (so the cases get past the first check). Besides
well-formed messages it sends raw bytes: invalid UTF-8 in string fields, truncated and mutated
encodings. A case fails when the answer is INTERNAL or UNKNOWN (a bug surfacing) or when the
server stops answering health checks (a crash).

Runs as its own process (``python -m tests.reliability.grpc_fuzz ADDRESS --cases N``): the
service's generated ``inference`` module and tritonclient.grpc cannot share one process.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoserve_runtime import health

BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
KNOWN_STRINGS = ["iris-knn", "sentiment", "regression-gp", "risk", "1", "2", "0", "-1", "../risk", "",
                 "sepal_length", "petal_width", "text", "age", "bmi", "FP32", "FP64", "INT64", "BYTES", "BOOL",
                 "input", "input-0", "label", "probabilities", "kernelshap", "exact", "\x00", "é" * 300]
INTS = st.one_of(st.sampled_from([0, 1, -1, 2, 3, 4, 150, 2**31 - 1, -(2**31), 10**9]), st.integers(-5, 10))
FLOATS = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, 5e-324]),
                   st.floats(allow_nan=True, allow_infinity=True))

SERVICES = ["protoserve.inference.v1.InferenceService", "protoserve.explain.v1.ExplainService",
            "inference.GRPCInferenceService", "protoserve.jobs.v1.JobService",
            "protoserve.monitoring.v1.MonitoringService"]


def _import_generated() -> None:
    """Register every generated module the services use in the default descriptor pool."""
    import importlib

    for module in ["protoserve.inference.v1.inference_service_pb2", "protoserve.explain.v1.explain_service_pb2",
                   "inference.grpc_predict_v2_pb2", "protoserve.jobs.v1.job_service_pb2",
                   "protoserve.monitoring.v1.monitoring_service_pb2"]:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            continue


def methods(service_names: list[str]) -> list[MethodDescriptor]:
    _import_generated()
    pool = descriptor_pool.Default()
    found = []
    for name in service_names:
        try:
            service = pool.FindServiceByName(name)
        except KeyError:
            continue
        found += [m for m in service.methods if not m.client_streaming]
    return found


def json_values(depth: int = 60) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), FLOATS, st.sampled_from(KNOWN_STRINGS), st.text(max_size=20))
    shallow = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.sampled_from(KNOWN_STRINGS), inner,
                                                                            max_size=4)), max_leaves=20)

    def nested(value: Any, levels: int) -> Any:
        for _ in range(levels):
            value = {"a": value}
        return value

    return st.one_of(shallow, st.builds(nested, shallow, st.integers(depth, depth * 2)))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return FLOATS if t == FieldDescriptor.TYPE_DOUBLE else st.one_of(st.sampled_from([math.nan, math.inf]),
                                                                          st.floats(width=32))
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_STRING:
        return st.one_of(st.sampled_from(KNOWN_STRINGS), st.text(max_size=40))
    if t == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"\xff\xfe", bytes(4096)]))
    if t == FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), st.integers(-3, 1000))
    unsigned = t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED32,
                     FieldDescriptor.TYPE_FIXED64)
    bits = 32 if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32,
                       FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32) else 64
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return st.one_of(INTS.filter(lambda v: low <= v <= high), st.sampled_from([low, high]), st.integers(low, high))


def message(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of this type with any subset of fields set to drawn values."""
    cls = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name == "google.protobuf.Struct":
        def struct(value: dict[str, Any]) -> Message:
            out = cls()
            try:
                out.update(value)  # type: ignore[attr-defined]
            except (ValueError, RecursionError):
                pass
            return out
        return st.builds(struct, st.dictionaries(st.sampled_from(KNOWN_STRINGS) | st.text(max_size=8), json_values(),
                                                 max_size=6))
    if descriptor.full_name == "google.protobuf.Value":
        return st.just(cls())
    fields = [f for f in descriptor.fields if f.type != FieldDescriptor.TYPE_GROUP]
    values: dict[str, st.SearchStrategy[Any]] = {}
    for field in fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 4:
                continue
            inner = message(field.message_type, depth + 1)
        else:
            inner = _scalar(field)
        if field.is_repeated:
            values[field.name] = st.one_of(st.lists(inner, max_size=4), st.lists(inner, min_size=200, max_size=300)
                                           if depth == 0 and field.type != FieldDescriptor.TYPE_MESSAGE
                                           else st.lists(inner, max_size=6))
        else:
            values[field.name] = inner

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        out = cls()
        chosen = draw(st.lists(st.sampled_from(sorted(values)), unique=True)) if values else []
        for name in chosen:
            value = draw(values[name])
            field = descriptor.fields_by_name[name]
            try:
                if field.message_type is not None and field.message_type.GetOptions().map_entry:
                    continue  # maps: left empty (their entries are drawn as messages elsewhere)
                if field.is_repeated:
                    target = getattr(out, name)
                    if field.type == FieldDescriptor.TYPE_MESSAGE:
                        for item in value:
                            target.add().CopyFrom(item)
                    else:
                        target.extend(value)
                elif field.type == FieldDescriptor.TYPE_MESSAGE:
                    getattr(out, name).CopyFrom(value)
                else:
                    setattr(out, name, value)
            except (ValueError, TypeError):
                continue  # a value this field cannot hold (e.g. a lone surrogate in a string)
        return out

    return build()


def raw_bytes(descriptor: Descriptor) -> st.SearchStrategy[bytes]:
    """Encodings no well-behaved client sends: invalid UTF-8 in each string field, random bytes."""
    invalid_utf8 = []
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_STRING and field.number < 16:
            payload = b"\xff\xfe\xc3\x28"
            invalid_utf8.append(bytes([(field.number << 3) | 2, len(payload)]) + payload)
    return st.one_of(st.sampled_from(invalid_utf8 or [b"\xff"]), st.binary(max_size=200))


class Fuzzer:
    def __init__(self, address: str, metadata: tuple[tuple[str, str], ...]) -> None:
        self.address = address
        self.metadata = metadata
        limit = 128 << 20
        self.channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", limit),
                                                               ("grpc.max_receive_message_length", limit)])
        self.codes: Counter[str] = Counter()
        self.bad: list[str] = []

    def served(self, method: MethodDescriptor) -> bool:
        """Whether the server has this method (an empty request is answered by anything but UNIMPLEMENTED)."""
        path = f"/{method.containing_service.full_name}/{method.name}"
        call = (self.channel.unary_stream if method.server_streaming else self.channel.unary_unary)(
            path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            result = call(b"", metadata=self.metadata, timeout=5)
            if method.server_streaming:
                next(iter(result), None)
        except grpc.RpcError as exc:
            return exc.code() != grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined, no-any-return]
        return True

    def call(self, method: MethodDescriptor, body: bytes) -> None:
        path = f"/{method.containing_service.full_name}/{method.name}"
        identity = lambda b: b  # noqa: E731
        try:
            if method.server_streaming:
                stream = self.channel.unary_stream(path, request_serializer=identity, response_deserializer=identity)
                for _ in stream(body, metadata=self.metadata, timeout=3):
                    break  # the first message is enough (WatchJob-like streams never end)
                code = grpc.StatusCode.OK
            else:
                self.channel.unary_unary(path, request_serializer=identity, response_deserializer=identity)(
                    body, metadata=self.metadata, timeout=30)
                code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            if code == grpc.StatusCode.DEADLINE_EXCEEDED and method.server_streaming:
                code = grpc.StatusCode.OK  # a stream that is still open after 3 s is a healthy stream
            if code in BAD:
                self.bad.append(f"{path}: {code.name}: {exc.details()[:300]}")  # type: ignore[attr-defined]
        self.codes[code.name] += 1

    def fuzz(self, method: MethodDescriptor, cases: int, seed: int) -> None:
        strategy = st.one_of(message(method.input_type).map(lambda m: m.SerializeToString()),
                             raw_bytes(method.input_type))

        @settings(max_examples=cases, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def run(body: bytes) -> None:
            self.call(method, body)

        from hypothesis import seed as hypothesis_seed

        hypothesis_seed(seed)(run)()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address")
    parser.add_argument("--cases", type=int, default=100, help="cases per RPC")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--key", default="", help="API key sent as a bearer token")
    parser.add_argument("--service", action="append", help="full service names (default: every one served)")
    args = parser.parse_args(argv)
    metadata = (("authorization", f"Bearer {args.key}"),) if args.key else ()
    fuzzer = Fuzzer(args.address, metadata)
    run = 0
    for method in methods(args.service or SERVICES):
        if not fuzzer.served(method):
            continue
        fuzzer.fuzz(method, args.cases, args.seed)
        run += 1
    alive = health.check(args.address, timeout=10) == "SERVING"
    print(json.dumps({"methods": run, "cases": sum(fuzzer.codes.values()), "codes": dict(fuzzer.codes),
                      "bad": sorted(set(fuzzer.bad))[:50], "bad_count": len(fuzzer.bad), "alive": alive}))
    return 0 if alive and not fuzzer.bad else 1


if __name__ == "__main__":
    sys.exit(main())
