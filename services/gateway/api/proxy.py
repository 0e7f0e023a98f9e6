"""The generic proxy: every forwarded RPC, of any kind, as raw bytes to the owning service.

Requests go upstream byte for byte (parsed on the side only to find the subjects they name).
Responses of RPCs that return personal data are parsed, cut down to the caller's field groups
and re-serialized; other responses go back byte for byte. The caller's identity travels as
`x-citydata-agency` / `x-citydata-purpose` metadata, proven to come from the gateway by its mTLS
client certificate (OU=GATEWAY) or, in development, a caller assertion (kit.service_identity); the
trace context travels through the OpenTelemetry client interceptor on the upstream channels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from opentelemetry.instrumentation.grpc import client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

from kit.errors import FieldViolation, InvalidArgument, Unavailable
from kit.grpc_server import MAX_MESSAGE_BYTES
from kit.service_identity import AssertingInterceptor, CallerAssertions
from kit.tls import secure_channel_to
from services.gateway.api.catalog import ForwardedMethod, MethodKind
from services.gateway.api.gate import Admission, CallRecord, Gatekeeper, UpstreamFailure
from services.gateway.api.messages import subjects_of, withhold_fields

GATEWAY_SERVICE = "GATEWAY"  # how upstream services know the gateway (its client certificate's OU)
NO_DEADLINE = 10**6  # grpc reports "no deadline" as a huge time_remaining()


def _identity(data: bytes) -> bytes:
    return data


class UpstreamChannels:
    """One long-lived channel per owning service, traced, asserting the gateway as the caller."""

    def __init__(self, assertions: CallerAssertions | None = None) -> None:
        self.assertions = assertions or CallerAssertions.from_env(GATEWAY_SERVICE)
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def channel(self, address: str) -> grpc.Channel:
        with self._lock:
            if address not in self._channels:
                raw = secure_channel_to(
                    address,
                    options=[
                        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                    ],
                    service="gateway",
                )
                raw = grpc.intercept_channel(raw, AssertingInterceptor(self.assertions))
                # OpenTelemetry's interceptor has its own channel wrapper (it is not a grpc.*ClientInterceptor).
                self._channels[address] = intercept_channel(raw, client_interceptor())
            return self._channels[address]

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()


class ProxyHandler(grpc.GenericRpcHandler):
    def __init__(self, methods: dict[str, ForwardedMethod], gate: Gatekeeper, channels: UpstreamChannels) -> None:
        self.methods = methods
        self.gate = gate
        self.channels = channels
        # grpc asks for the handler on every call: build each method's once (its upstream stub too).
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        path: str = handler_call_details.method  # type: ignore[attr-defined]
        handler = self._handlers.get(path)
        if handler is None and path in self.methods:
            handler = self._handlers.setdefault(path, self._handler(self.methods[path]))
        return handler

    def _handler(self, method: ForwardedMethod) -> grpc.RpcMethodHandler:
        forward = _Forward(method, self.gate, self.channels.channel(method.upstream))
        builders: dict[MethodKind, Callable[..., grpc.RpcMethodHandler]] = {
            MethodKind.UNARY_UNARY: lambda: grpc.unary_unary_rpc_method_handler(forward.unary_unary),
            MethodKind.UNARY_STREAM: lambda: grpc.unary_stream_rpc_method_handler(forward.unary_stream),
            MethodKind.STREAM_UNARY: lambda: grpc.stream_unary_rpc_method_handler(forward.stream_unary),
            MethodKind.STREAM_STREAM: lambda: grpc.stream_stream_rpc_method_handler(forward.stream_stream),
        }
        return builders[method.kind]()


class _Forward:
    """One method's forwarding behaviours (request/response stay bytes: no (de)serializers)."""

    def __init__(self, method: ForwardedMethod, gate: Gatekeeper, channel: grpc.Channel) -> None:
        self.method = method
        self.gate = gate
        self.channel = channel
        self.response_type = method.response_type.DESCRIPTOR.full_name
        self._unary_stub: Any = None

    def unary_unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        if self._unary_stub is None:
            self._unary_stub = self.channel.unary_unary(self.method.path, _identity, _identity)
        stub = self._unary_stub

        def action(admission: Admission, call: CallRecord) -> bytes:
            response, upstream = _upstream(
                lambda: stub.with_call(request, metadata=admission.upstream_metadata(), timeout=_timeout(context))
            )
            context.set_trailing_metadata((*upstream.trailing_metadata(), *admission.withheld_metadata()))
            return self._response(response, admission, call)

        return self.gate.unary(context, self.method.right, self.response_type, action, self._noting(request))

    def stream_unary(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        def action(admission: Admission, call: CallRecord) -> bytes:
            stub = self.channel.stream_unary(self.method.path, _identity, _identity)
            refused: list[InvalidArgument] = []
            response, upstream = _upstream(
                lambda: stub.with_call(
                    self._noting_subjects(requests, call, refused),
                    metadata=admission.upstream_metadata(),
                    timeout=_timeout(context),
                ),
                refused,
            )
            context.set_trailing_metadata((*upstream.trailing_metadata(), *admission.withheld_metadata()))
            return self._response(response, admission, call)

        return self.gate.unary(context, self.method.right, self.response_type, action)

    def unary_stream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        def action(admission: Admission, call: CallRecord) -> Iterator[bytes]:
            stub = self.channel.unary_stream(self.method.path, _identity, _identity)
            responses = stub(request, metadata=admission.upstream_metadata(), timeout=_timeout(context))
            yield from self._relay_stream(responses, admission, call, context)

        return self.gate.streaming(context, self.method.right, self.response_type, action, self._noting(request))

    def stream_stream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        def action(admission: Admission, call: CallRecord) -> Iterator[bytes]:
            stub = self.channel.stream_stream(self.method.path, _identity, _identity)
            refused: list[InvalidArgument] = []
            responses = stub(
                self._noting_subjects(requests, call, refused),
                metadata=admission.upstream_metadata(),
                timeout=_timeout(context),
            )
            yield from self._relay_stream(responses, admission, call, context, refused)

        return self.gate.streaming(context, self.method.right, self.response_type, action)

    def _relay_stream(
        self,
        responses: Any,
        admission: Admission,
        call: CallRecord,
        context: grpc.ServicerContext,
        refused: list[InvalidArgument] | None = None,
    ) -> Iterator[bytes]:
        context.add_callback(responses.cancel)  # the caller went away: stop the upstream call too
        try:
            for response in responses:
                yield self._response(response, admission, call)
        except grpc.RpcError as error:
            raise (refused[0] if refused else _failure(error)) from None
        context.set_trailing_metadata((*responses.trailing_metadata(), *admission.withheld_metadata()))

    def _noting(self, request: bytes) -> Callable[[CallRecord], None]:
        def note(call: CallRecord) -> None:
            call.subjects |= subjects_of(self._parse(request, self.method.request_type, "request"))

        return note

    def _noting_subjects(
        self, requests: Iterator[bytes], call: CallRecord, refused: list[InvalidArgument]
    ) -> Iterator[bytes]:
        """Forwards the caller's stream; an undecodable chunk cancels the upstream call (raising
        inside a request iterator does) and is remembered, so the caller hears INVALID_ARGUMENT."""
        for request in requests:
            try:
                call.subjects |= subjects_of(self._parse(request, self.method.request_type, "request"))
            except InvalidArgument as exc:
                refused.append(exc)
                raise
            yield request

    def _response(self, data: bytes, admission: Admission, call: CallRecord) -> bytes:
        message = self._parse(data, self.method.response_type, "response")
        if admission.personal:
            withhold_fields(message, admission.visible_fields)
            data = message.SerializeToString()
        call.subjects |= subjects_of(message)
        return data

    def _parse(self, data: bytes, message_type: type[Message], what: str) -> Message:
        try:
            return message_type.FromString(data)
        except DecodeError:
            if what == "request":
                raise InvalidArgument(
                    [FieldViolation("", f"not a valid {message_type.DESCRIPTOR.full_name}")]
                ) from None
            raise Unavailable(f"{self.method.path}: the service sent an unreadable response") from None


def _upstream(send: Callable[[], tuple[bytes, Any]], refused: list[InvalidArgument] | None = None) -> tuple[bytes, Any]:
    try:
        return send()
    except grpc.RpcError as error:
        raise (refused[0] if refused else _failure(error)) from None


def _failure(error: grpc.RpcError) -> Exception:
    code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
    trailing = tuple(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    if code == grpc.StatusCode.UNAVAILABLE and not trailing:
        # The gateway could not reach the service (no answer from it): say so without internal addresses.
        return Unavailable("the service is unavailable, retry later")
    return UpstreamFailure(code, error.details() or "", trailing)  # type: ignore[attr-defined]


def _timeout(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None or remaining > NO_DEADLINE else max(remaining, 0.001)
