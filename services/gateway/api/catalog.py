"""Which RPCs the gateway forwards, discovered from the generated descriptors in gen/citydata/v1.

Every service of every `citydata.v1` proto found there is forwarded (except GatewayService, which
the gateway answers itself), so a new RPC or a new service needs no gateway change. The owning
service's address comes from `<NAME>_ADDRESS` (RegistryService -> REGISTRY_ADDRESS), defaulting
to the platform's port for that service on 127.0.0.1.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from kit.config import DEFAULT_PORTS

log = logging.getLogger(__name__)

PACKAGE = "citydata.v1"
GATEWAY_SERVICE = f"{PACKAGE}.GatewayService"


class MethodKind(Enum):
    UNARY_UNARY = "unary_unary"
    UNARY_STREAM = "unary_stream"
    STREAM_UNARY = "stream_unary"
    STREAM_STREAM = "stream_stream"


@dataclass(frozen=True)
class ForwardedMethod:
    path: str  # "/citydata.v1.RegistryService/GetCitizen"
    kind: MethodKind
    upstream: str  # host:port of the owning service
    request_type: type[Message]
    response_type: type[Message]

    @property
    def right(self) -> str:
        """The name policies grant: "citydata.v1.RegistryService/GetCitizen"."""
        return self.path.lstrip("/")


def load_generated_protos() -> list[ServiceDescriptor]:
    """Imports every generated `citydata.v1` module; returns the services they declare."""
    package = importlib.import_module(PACKAGE)
    services: list[ServiceDescriptor] = []
    for module_info in pkgutil.iter_modules(package.__path__):
        if module_info.name.endswith("_pb2"):
            module = importlib.import_module(f"{PACKAGE}.{module_info.name}")
            services.extend(module.DESCRIPTOR.services_by_name.values())
    return services


def kind_of(method: MethodDescriptor) -> MethodKind:
    if method.client_streaming:
        return MethodKind.STREAM_STREAM if method.server_streaming else MethodKind.STREAM_UNARY
    return MethodKind.UNARY_STREAM if method.server_streaming else MethodKind.UNARY_UNARY


def upstream_address(service: ServiceDescriptor, environ: Mapping[str, str]) -> str | None:
    name = service.name.removesuffix("Service")
    configured = environ.get(f"{name.upper()}_ADDRESS")
    if configured:
        return configured
    port = DEFAULT_PORTS.get(name.lower())
    return f"127.0.0.1:{port}" if port is not None else None


def forwarded_methods(environ: Mapping[str, str] | None = None) -> dict[str, ForwardedMethod]:
    """Path -> method for every RPC the gateway forwards."""
    env = os.environ if environ is None else environ
    methods: dict[str, ForwardedMethod] = {}
    for service in load_generated_protos():
        if service.full_name == GATEWAY_SERVICE:
            continue
        upstream = upstream_address(service, env)
        if upstream is None:
            log.warning(
                "no address for %s: set %s_ADDRESS; its RPCs are not forwarded",
                service.full_name,
                service.name.removesuffix("Service").upper(),
            )
            continue
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            methods[path] = ForwardedMethod(
                path, kind_of(method), upstream, GetMessageClass(method.input_type), GetMessageClass(method.output_type)
            )
    return methods


def reaches_any(message: Descriptor, targets: frozenset[str], seen: frozenset[str] = frozenset()) -> bool:
    """Whether `message` is, or holds at any depth, a message of one of the `targets` types."""
    if message.full_name in targets:
        return True
    if message.full_name in seen:
        return False
    inner = seen | {message.full_name}
    return any(
        reaches_any(field.message_type, targets, inner) for field in message.fields if field.message_type is not None
    )
