"""The gateway's fast proto3 JSON path gives exactly what json_format gives, on many varied messages and bodies."""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
import pytest
from google.protobuf import json_format, struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from protoserve.inference.v1 import inference_service_pb2 as inference

from gateway import fast_json
from gateway.discovery import discover_routes, message_class

STRINGS = ["", "a", "iris-knn", "é ü 中文 😀", "with \"quotes\" and \\ and \n", " ", "0", "true", "NaN"]
DOUBLES = [0.0, -0.0, 1.0, -2.5, 0.1, 1e308, -1e308, 5e-324, 1e-7, 123456789.123, math.inf, -math.inf, math.nan,
           2.0**53 + 1, 1 / 3]
INTS = {FieldDescriptor.CPPTYPE_INT32: [0, 1, -1, 2**31 - 1, -(2**31)],
        FieldDescriptor.CPPTYPE_UINT32: [0, 1, 2**32 - 1],
        FieldDescriptor.CPPTYPE_INT64: [0, -1, 2**63 - 1, -(2**63), 2**53 + 1],
        FieldDescriptor.CPPTYPE_UINT64: [0, 1, 2**64 - 1]}


def _types() -> list[Descriptor]:
    """Every message type the gateway's REST routes send or receive, with the types inside them."""
    found: dict[str, Descriptor] = {}

    def visit(descriptor: Descriptor) -> None:
        if descriptor.full_name not in found:
            found[descriptor.full_name] = descriptor
            for field in descriptor.fields:
                if field.message_type is not None:
                    visit(field.message_type)

    for route in discover_routes():
        visit(route.method.input_type)
        visit(route.method.output_type)
    return [found[name] for name in sorted(found)]


def _scalar(rng: random.Random, field: FieldDescriptor) -> Any:
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        return rng.choice(STRINGS).encode() if field.type == FieldDescriptor.TYPE_BYTES else rng.choice(STRINGS)
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return rng.random() < 0.5
    if cpp in INTS:
        return rng.choice(INTS[cpp])
    if cpp in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        return rng.choice(DOUBLES)
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        return rng.choice(field.enum_type.values).number
    raise AssertionError(field.full_name)


def _json_value(rng: random.Random, depth: int) -> Any:
    kinds = [lambda: rng.choice(STRINGS), lambda: rng.choice([d for d in DOUBLES if math.isfinite(d)]),
             lambda: rng.random() < 0.5, lambda: None]
    if depth < 2:
        kinds += [lambda: [_json_value(rng, depth + 1) for _ in range(rng.randrange(3))],
                  lambda: {rng.choice(STRINGS): _json_value(rng, depth + 1) for _ in range(rng.randrange(3))}]
    return rng.choice(kinds)()


def _fill(rng: random.Random, message: Message, depth: int = 0) -> Message:
    """Each field set or left unset at random, with edge values; oneofs get one member or none."""
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == "google.protobuf.Struct":
        message.update({rng.choice(STRINGS): _json_value(rng, 1) for _ in range(rng.randrange(3))})  # type: ignore[attr-defined]
        return message
    if descriptor.full_name == "google.protobuf.Value":
        holder = struct_pb2.Struct()
        holder.update({"v": _json_value(rng, 1)})
        message.CopyFrom(holder.fields["v"])
        return message
    if descriptor.full_name.startswith("google.protobuf."):
        return message  # Timestamp, Duration, ...: json_format prints them either way
    for field in descriptor.fields:
        if rng.random() < 0.3 or (field.message_type is not None and depth > 3):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target = getattr(message, field.name)
            value_field = field.message_type.fields_by_name["value"]
            for _ in range(rng.randrange(3)):
                key = _scalar(rng, field.message_type.fields_by_name["key"])
                if value_field.message_type is not None:
                    _fill(rng, target[key], depth + 1)
                else:
                    target[key] = _scalar(rng, value_field)
        elif field.is_repeated:
            target = getattr(message, field.name)
            for _ in range(rng.randrange(4)):
                if field.message_type is not None:
                    _fill(rng, target.add(), depth + 1)
                else:
                    target.append(_scalar(rng, field))
        elif field.message_type is not None:
            getattr(message, field.name).SetInParent()
            _fill(rng, getattr(message, field.name), depth + 1)
        else:
            setattr(message, field.name, _scalar(rng, field))
    return message


def _json_format(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def test_the_hot_messages_take_the_fast_path() -> None:
    """Otherwise the comparisons below would compare json_format with itself."""
    for name in ["protoserve.inference.v1.PredictResponse", "protoserve.common.v1.Prediction",
                 "protoserve.common.v1.Classification", "protoserve.common.v1.Regression"]:
        assert fast_json._compile(inference.DESCRIPTOR.pool.FindMessageTypeByName(name)) is not None, name
    assert fast_json._fast_parse({"model": "m", "rows": [{"a": 1.5, "b": "x"}], "skip_cache": True},
                                 inference.PredictRequest())


@pytest.mark.parametrize("descriptor", _types(), ids=lambda d: d.full_name)
def test_printing_equals_json_format(descriptor: Descriptor) -> None:
    rng = random.Random(descriptor.full_name)
    cls = message_class(descriptor)
    for _ in range(150):
        message = _fill(rng, cls())
        expected = _json_format(message)
        got = fast_json.to_dict(message)
        assert orjson.dumps(got) == orjson.dumps(expected), message  # same keys, same order, same values


def _body_value(rng: random.Random) -> Any:
    return rng.choice([
        lambda: rng.choice(STRINGS), lambda: rng.random() < 0.5, lambda: None, lambda: rng.choice([0, 1, -3, 2**70]),
        lambda: rng.choice(DOUBLES[:10]), lambda: [], lambda: {},
        lambda: [{"x": rng.choice(DOUBLES[:10]), "y": rng.choice(STRINGS)} for _ in range(rng.randrange(3))],
        lambda: [_json_value(rng, 0) for _ in range(rng.randrange(3))],
        lambda: [{k: _json_value(rng, 1) for k in rng.sample(STRINGS, 2)}],
    ])()  # no lone surrogates: parse_json (orjson) refuses those before any of this runs


def _outcome(parse: Any, tree: Any, cls: type[Message]) -> tuple[str, Any]:
    try:
        return "ok", parse(tree, cls).SerializeToString(deterministic=True)
    except json_format.ParseError as exc:
        return "error", str(exc)


def _reference(tree: Any, cls: type[Message]) -> Message:
    return json_format.ParseDict(tree, cls(), ignore_unknown_fields=False)


@pytest.mark.parametrize("descriptor", _types(), ids=lambda d: d.full_name)
def test_parsing_equals_json_format(descriptor: Descriptor) -> None:
    """Plain bodies, JSON names, unknown fields, wrong types, nulls, nested rows: same message or same error."""
    rng = random.Random(descriptor.full_name)
    cls = message_class(descriptor)
    names = [f.name for f in descriptor.fields] + [f.json_name for f in descriptor.fields] + ["unknown", "[x.y]"]
    fast = 0
    for _ in range(300):
        plain = rng.random() < 0.5
        tree: dict[str, Any] = {}
        for name in rng.sample(names, rng.randrange(min(len(names), 5) + 1)):
            field = descriptor.fields_by_name.get(name)
            if plain and field is not None and field.message_type is None and not field.is_repeated and \
                    field.cpp_type in (FieldDescriptor.CPPTYPE_STRING, FieldDescriptor.CPPTYPE_BOOL):
                tree[name] = _scalar(rng, field)
            else:
                tree[name] = _body_value(rng)
        expected = _outcome(_reference, tree, cls)
        assert _outcome(fast_json.parse, tree, cls) == expected, tree
        fast += bool(fast_json._fast_parse(tree, cls())) if expected[0] == "ok" else 0
    if descriptor.full_name == "protoserve.inference.v1.PredictRequest":
        assert fast > 30  # the fast path was really compared, not only the fallback
