"""proto3 JSON for the hot messages, cheaper than ``json_format``'s generic walk and equal to it.

``json_format`` decides per field and per value what to do (extension? map? well-known type?
which scalar?). For message types made only of plain fields, those decisions depend on the
descriptor alone, so they are taken once per type here ("compiled") and each call only walks the
values. A type with anything else (maps, enums, bytes, well-known types, extensions) is not
compiled and goes through ``json_format`` as before; so does any input the fast parser does not
recognise, which is how every error keeps ``json_format``'s exact message.
tests/gateway/test_fast_json.py compares both paths on many varied messages and bodies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

_Convert = Callable[[Any], Any]
_INT32 = {FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32}
_INT64 = {FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64}
_STRUCT = "google.protobuf.Struct"


def _identity(value: Any) -> Any:
    return value


def _double(value: float) -> Any:
    # json_format's rules: the non-finite values as their proto3 JSON names, the rest as they are.
    if math.isinf(value):
        return "-Infinity" if value < 0.0 else "Infinity"
    if math.isnan(value):
        return "NaN"
    return value


def _float(value: float) -> Any:
    if math.isinf(value) or math.isnan(value):
        return _double(value)
    return type_checkers.ToShortestFloat(value)


def _scalar(field: FieldDescriptor) -> _Convert | None:
    """The value converter of a plain scalar field, or None when json_format must handle it."""
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        return None if field.type == FieldDescriptor.TYPE_BYTES else str
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return bool
    if cpp in _INT32:
        return _identity
    if cpp in _INT64:
        return str
    if cpp == FieldDescriptor.CPPTYPE_DOUBLE:
        return _double
    if cpp == FieldDescriptor.CPPTYPE_FLOAT:
        return _float
    return None  # enums (names, json_name options, closed enums) stay with json_format


class _Printer:
    """MessageToDict(preserving_proto_field_name=True, always_print_fields_with_no_presence=True) of one type."""

    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor
        self.fields: dict[str, tuple[str, bool, _Convert]] = {}  # by full name: (JSON name, repeated, converter)
        self.defaults: list[tuple[str, bool, Any]] = []  # fields printed when unset: (name, repeated, JSON default)

    def to_dict(self, message: Message) -> dict[str, Any]:
        js: dict[str, Any] = {}
        fields = self.fields
        for field, value in message.ListFields():  # set fields, by field number, as json_format prints them
            name, repeated, convert = fields[field.full_name]
            js[name] = [convert(v) for v in value] if repeated else convert(value)
        for name, repeated, default in self.defaults:  # then the unset ones without presence, in declaration order
            if name not in js:
                js[name] = [] if repeated else default
        return js


_printers: dict[str, _Printer | None] = {}


def _compile(descriptor: Descriptor, compiling: frozenset[str] = frozenset()) -> _Printer | None:
    """The printer of a type made only of plain fields and such types; None for any other (and recursive) type."""
    name = descriptor.full_name
    if name not in _printers:
        if name in compiling:
            return None  # recursive types are left to json_format
        _printers[name] = _build(descriptor, compiling | {name})
    return _printers[name]


def _build(descriptor: Descriptor, compiling: frozenset[str]) -> _Printer | None:
    # Well-known types print specially; map entries and extensions are named differently.
    if descriptor.full_name.startswith("google.protobuf.") or descriptor.GetOptions().map_entry or descriptor.extension_ranges:
        return None
    printer = _Printer(descriptor)
    for field in descriptor.fields:
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            inner = _compile(field.message_type, compiling)
            convert: _Convert | None = None if inner is None else inner.to_dict
        else:
            convert = _scalar(field)
        if convert is None:
            return None
        printer.fields[field.full_name] = (field.name, field.is_repeated, convert)
        if not field.has_presence:
            printer.defaults.append((field.name, field.is_repeated, None if field.is_repeated else convert(field.default_value)))
    return printer


def to_dict(message: Message) -> dict[str, Any]:
    """The proto3 JSON object of message, proto field names, fields without presence printed when unset."""
    printer = _compile(message.DESCRIPTOR)
    if printer is None:
        return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
    return printer.to_dict(message)


# Parsing: the fast path takes only what it can build exactly as json_format would, and says
# "not mine" (None) for everything else, including every input json_format would refuse.

_FLAT = (str, bool, int, float, type(None))


def _parse_struct(value: Any, struct: Any) -> bool:
    # json_format sets each member as a Value: str -> string, bool -> bool, int/float -> number,
    # None -> null; Struct.update does the same for these flat types (nested objects and lists are left to json_format).
    if not isinstance(value, dict) or not all(type(v) in _FLAT for v in value.values()):
        return False
    struct.update(value)
    return True


def _parse_fields(descriptor: Descriptor) -> dict[str, FieldDescriptor] | None:
    """The fields the fast parser fills, by proto name: strings, bools and repeated Structs only."""
    if descriptor.full_name.startswith("google.protobuf."):
        return None  # well-known types parse from their own JSON forms
    fields = {}
    for field in descriptor.fields:
        plain = field.cpp_type in (FieldDescriptor.CPPTYPE_STRING, FieldDescriptor.CPPTYPE_BOOL)
        plain = plain and not field.is_repeated and field.type != FieldDescriptor.TYPE_BYTES
        structs = field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE and field.message_type.full_name == _STRUCT
        if field.containing_oneof is None and not field.is_extension and (plain or (structs and field.is_repeated)):
            fields[field.name] = field
    return fields


_parse_tables: dict[str, dict[str, FieldDescriptor] | None] = {}


def _fast_parse(tree: dict[str, Any], message: Message) -> bool:
    name = message.DESCRIPTOR.full_name
    if name not in _parse_tables:
        _parse_tables[name] = _parse_fields(message.DESCRIPTOR)
    fields = _parse_tables[name]
    if fields is None:
        return False
    for key, value in tree.items():
        field = fields.get(key)
        if field is None:  # unknown, a JSON name, or a kind of field left to json_format
            return False
        if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
            # json_format refuses unpaired surrogates; UTF-8 encoding fails on exactly those.
            if type(value) is not str or not (value.isascii() or _utf8(value)):
                return False
            setattr(message, key, value)
        elif field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
            if type(value) is not bool:
                return False
            setattr(message, key, value)
        else:
            if type(value) is not list:
                return False
            target = getattr(message, key)
            for item in value:
                if not _parse_struct(item, target.add()):
                    return False
    return True


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse(tree: dict[str, Any], message_class: type[Message]) -> Message:
    """json_format.ParseDict(tree, message_class()) (unknown fields refused), faster for the plain bodies it knows."""
    message = message_class()
    try:
        if isinstance(tree, dict) and _fast_parse(tree, message):
            return message
    except (TypeError, ValueError):
        pass  # anything surprising: json_format decides, with its own error
    message = message_class()  # the fast path may have filled part of it
    json_format.ParseDict(tree, message, ignore_unknown_fields=False)
    return message
