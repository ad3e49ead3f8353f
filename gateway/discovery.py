"""Routes derived from the protos: every ``google.api.http``-annotated RPC of every protoserve service.

The generated modules under the ``protoserve`` package are imported at start, so a service whose
proto is added (and generated) is exposed over REST with no gateway code.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor

SERVICE_PACKAGE = "protoserve"
_VARIABLE = re.compile(r"\{([a-zA-Z0-9_.]+)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC."""

    http_method: str  # GET, POST, ...
    template: str  # /v1/models/{model}:predict
    pattern: re.Pattern[str]
    path_fields: tuple[str, ...]  # dotted field paths bound from the path, in order
    body: str  # "*", a field name, or "" for none
    method: MethodDescriptor
    request_class: type[Any]
    response_class: type[Any]

    @functools.cached_property
    def service(self) -> str:
        return self.method.containing_service.full_name

    @functools.cached_property
    def full_method(self) -> str:
        return f"/{self.service}/{self.method.name}"

    @functools.cached_property
    def idempotent(self) -> bool:
        """Safe to retry: a GET, or declared so in the proto (``option idempotency_level``)."""
        level = self.method.GetOptions().idempotency_level
        return self.http_method == "GET" or level != descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN

    @property
    def openapi_path(self) -> str:
        return _VARIABLE.sub(lambda m: "{" + m.group(1) + "}", self.template)


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """A path template (``/v1/{name=models/*}:verb``) as a regex with one group per variable."""
    fields: list[str] = []
    out = ["^"]
    pos = 0
    for match in _VARIABLE.finditer(template):
        out.append(re.escape(template[pos:match.start()]))
        fields.append(match.group(1))
        segments = (match.group(2) or "*").split("/")
        inner = "/".join("[^/]+" if s == "*" else ".+" if s == "**" else re.escape(s) for s in segments)
        out.append(f"(?P<v{len(fields) - 1}>{inner})")
        pos = match.end()
    out.append(re.escape(template[pos:]) + "$")
    return re.compile("".join(out)), tuple(fields)


def _bindings(rule: http_pb2.HttpRule) -> list[tuple[str, str, str]]:
    found = []
    for rule_ in [rule, *rule.additional_bindings]:
        kind = rule_.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            found.append((rule_.custom.kind.upper(), rule_.custom.path, rule_.body))
        else:
            found.append((kind.upper(), getattr(rule_, kind), rule_.body))
    return found


def message_class(descriptor: Descriptor) -> type[Any]:
    return message_factory.GetMessageClass(descriptor)


def routes_of(service: ServiceDescriptor) -> list[Route]:
    routes = []
    for method in service.methods:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        for http_method, template, body in _bindings(options.Extensions[annotations_pb2.http]):
            pattern, fields = compile_template(template)
            routes.append(Route(http_method, template, pattern, fields, body, method,
                                message_class(method.input_type), message_class(method.output_type)))
    return routes


def discover_services(package: str = SERVICE_PACKAGE) -> list[ServiceDescriptor]:
    """Every service in the generated modules of package, sorted by full name."""
    root = importlib.import_module(package)
    services: dict[str, ServiceDescriptor] = {}
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(info.name)
            for service in module.DESCRIPTOR.services_by_name.values():
                services[service.full_name] = service
    return [services[name] for name in sorted(services)]


def discover_routes(package: str = SERVICE_PACKAGE) -> list[Route]:
    return [route for service in discover_services(package) for route in routes_of(service)]
