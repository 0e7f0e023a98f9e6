"""Tiny gRPC services for testing the kit: generic handlers, no proto of their own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import wrappers_pb2

SERVICE = "citydata.test.v1.TestService"


def generic_service(
    methods: dict[str, Callable[[wrappers_pb2.StringValue, Any], wrappers_pb2.StringValue]],
) -> Callable[[grpc.Server], None]:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=wrappers_pb2.StringValue.FromString,
            response_serializer=wrappers_pb2.StringValue.SerializeToString,
        )
        for name, behaviour in methods.items()
    }
    generic = grpc.method_handlers_generic_handler(SERVICE, handlers)
    return lambda server: server.add_generic_rpc_handlers((generic,))


def call(channel: grpc.Channel, method: str, value: str, timeout: float = 30) -> str:
    stub = channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=wrappers_pb2.StringValue.SerializeToString,
        response_deserializer=wrappers_pb2.StringValue.FromString,
    )
    return str(stub(wrappers_pb2.StringValue(value=value), timeout=timeout).value)


def sleep_then_echo(request: wrappers_pb2.StringValue, _context: Any) -> wrappers_pb2.StringValue:
    time.sleep(float(request.value))
    return wrappers_pb2.StringValue(value=f"slept {request.value}")
