"""OpenAPI 3 generated from the same descriptors (and routes) the gateway serves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.discovery import Route
from gateway.jobs_rest import SUBMIT_JOB
from protoserve_runtime.auth import OPEN, scope_for

F = FieldDescriptor
_SCALARS: dict[int, dict[str, Any]] = {
    F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    F.TYPE_FLOAT: {"type": "number", "format": "float"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    # proto3 JSON writes 64-bit integers as strings, so that JavaScript keeps every digit.
    F.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    F.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}},
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "string", "description": "the gRPC status code name, e.g. INVALID_ARGUMENT"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {"type": "object", "properties": {"field": {"type": "string"}, "description": {"type": "string"}}},
        },
    },
}


class SchemaBuilder:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        if descriptor.full_name not in self.components:
            self.components[descriptor.full_name] = {}  # placeholder: recursion stops here
            self.components[descriptor.full_name] = self.message(descriptor)
        return {"$ref": f"#/components/schemas/{descriptor.full_name}"}

    def message(self, descriptor: Descriptor, skip: Sequence[str] = ()) -> dict[str, Any]:
        properties = {f.name: self.field(f) for f in descriptor.fields if f.name not in skip}
        return {"type": "object", "properties": properties, "additionalProperties": False}

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.type == F.TYPE_MESSAGE:
            return self.ref(field.message_type)
        if field.type == F.TYPE_ENUM:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        return dict(_SCALARS[field.type])

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        if field.is_repeated:
            return {"type": "array", "items": self._single(field)}
        return self._single(field)


def _field(descriptor: Descriptor, path: str) -> FieldDescriptor:
    field = None
    for part in path.split("."):
        field = descriptor.fields_by_name[part]
        descriptor = field.message_type
    assert field is not None
    return field


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _success_status(route: Route) -> str:
    return "202" if route.full_method == SUBMIT_JOB else "200"  # accepted: the job runs later


def _operation(route: Route, schemas: SchemaBuilder) -> dict[str, Any]:
    request = route.request_class.DESCRIPTOR
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": schemas.field(_field(request, name))}
        for name in route.path_fields
    ]
    operation: dict[str, Any] = {
        "operationId": f"{route.method.containing_service.name}_{route.method.name}",
        "tags": [route.service],
        "summary": f"{route.method.name} ({route.full_method})",
        "parameters": parameters,
        "responses": {
            _success_status(route): {"description": "OK", "content": _json(schemas.ref(route.method.output_type))},
            "default": {"description": "An error", "content": _json({"$ref": "#/components/schemas/Error"})},
        },
    }
    if route.body == "*":
        skip = [p for p in route.path_fields if "." not in p]
        body_schema = schemas.message(request, skip)
        operation["requestBody"] = {"required": True, "content": _json(body_schema)}
    elif route.body:
        operation["requestBody"] = {"required": True, "content": _json(schemas.field(request.fields_by_name[route.body]))}
    else:
        for field in request.fields:
            if field.name in route.path_fields or field.type == F.TYPE_MESSAGE:
                continue
            schema = schemas.field(field)
            parameters.append({"name": field.name, "in": "query", "required": False, "schema": schema,
                               **({"style": "form", "explode": True} if schema.get("type") == "array" else {})})
    scope = scope_for(route.full_method)
    if scope != OPEN:
        operation["security"] = [{"bearerAuth": [scope]}]
        operation["description"] = f"Needs an API key with the scope `{scope}` (or `admin`) when auth is on."
    return operation


def build_openapi(routes: Sequence[Route], title: str = "protoserve", version: str = "0.1.0") -> dict[str, Any]:
    schemas = SchemaBuilder()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.openapi_path, {})[route.http_method.lower()] = _operation(route, schemas)
    components = {"Error": ERROR_SCHEMA, **dict(sorted(schemas.components.items()))}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "REST/JSON routes derived from the google.api.http annotations of the protoserve protos. "
                           "Fields keep their proto names; every field is printed, defaults included.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "an API key: ps_<id>_<secret>"},
            },
        },
    }


def with_model_examples(spec: dict[str, Any], rows: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The document with the models named where a path takes one, and a real row of each model as
    an example of every request body that carries rows."""
    if not rows:
        return spec
    names = sorted(rows)
    paths: dict[str, Any] = {}
    for path, operations in spec["paths"].items():
        if "{model}" not in path:
            paths[path] = operations
            continue
        paths[path] = {method: _with_examples(operation, names, rows) for method, operation in operations.items()}
    return {**spec, "paths": paths}


def _with_examples(operation: dict[str, Any], names: list[str], rows: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    operation = dict(operation)
    operation["parameters"] = [
        {**p, "examples": {n: {"value": n} for n in names}} if p.get("name") == "model" and p.get("in") == "path" else p
        for p in operation["parameters"]
    ]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and "rows" in body["schema"].get("properties", {}):
        examples = {n: {"summary": f"a row {n} takes", "value": {"rows": [rows[n]]}} for n in names}
        operation["requestBody"] = {**operation["requestBody"], "content": {"application/json": {**body, "examples": examples}}}
    return operation
