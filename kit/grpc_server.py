"""gRPC server bootstrap: health and reflection always on, tracing, call logging, error mapping,
message size limits, and graceful shutdown on SIGTERM (health NOT_SERVING → drain → stop)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import server_interceptor

from kit.errors import FieldViolation, InvalidArgument
from kit.grpc_errors import abort_with
from kit.metrics import meter
from kit.request_checks import request_violations
from kit.tls import server_credentials_for

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024

Registrar = Callable[[grpc.Server], None]


class CallInterceptor(grpc.ServerInterceptor):
    """Maps domain errors to statuses, counts every call in the metrics (method, outcome, duration)
    and logs a line per failed call and per successful call that took `ok_log_min_ms` or more
    (0: every call). At thousands of reads a second a JSON line per success costs about a tenth
    of a read's CPU and says nothing the metrics do not; failures and slow calls still get one.
    """

    def __init__(self, ok_log_min_ms: float = 0.0) -> None:
        self.ok_log_min_ms = ok_log_min_ms

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method  # type: ignore[attr-defined]
        if method.startswith("/grpc.health") or method.startswith("/grpc.reflection"):
            return handler
        decode = _lenient(handler.request_deserializer)
        ok_min = self.ok_log_min_ms
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary, method, ok_min), decode, handler.response_serializer
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _streaming(handler.unary_stream, method, ok_min), decode, handler.response_serializer
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _unary(handler.stream_unary, method, ok_min), decode, handler.response_serializer
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                _streaming(handler.stream_stream, method, ok_min), decode, handler.response_serializer
            )
        return handler


@dataclass(frozen=True)
class _Undecodable:
    """Stands in for a request whose bytes are not a valid message of the RPC's request type."""

    type_name: str


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """grpcio answers INTERNAL when a request deserializer raises; a caller who sends bytes that
    are not the request message (truncated, invalid UTF-8 in a string, nesting too deep) made a
    bad request, so the failure is handed to the handler, which answers INVALID_ARGUMENT."""
    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)
    type_name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request message")

    def decode(raw: bytes) -> Any:
        try:
            message = deserializer(raw)
        except Exception:
            return _Undecodable(type_name)
        violations = request_violations(message) if isinstance(message, Message) else []
        return _Refused(violations) if violations else message

    return decode


@dataclass(frozen=True)
class _Refused:
    """Stands in for a decoded request that fails the checks every request gets (kit.request_checks)."""

    violations: list[FieldViolation]


def _refusal(request: Any) -> InvalidArgument | None:
    if isinstance(request, _Undecodable):
        problem = f"the request body is not a valid {request.type_name} (undecodable protobuf)"
        return InvalidArgument([FieldViolation("", problem)], message=problem)
    if isinstance(request, _Refused):
        return InvalidArgument(request.violations)
    return None


def _decoded(request: Any) -> Any:
    """The request, with undecodable or refused messages (single or inside a request stream) refused."""
    refusal = _refusal(request)
    if refusal is not None:
        raise refusal
    if isinstance(request, Iterator):
        return _decoded_stream(request)
    return request


def _decoded_stream(requests: Iterator[Any]) -> Iterator[Any]:
    for request in requests:
        refusal = _refusal(request)
        if refusal is not None:
            raise refusal
        yield request


def _unary(
    behaviour: Callable[[Any, grpc.ServicerContext], Any], method: str, ok_log_min_ms: float = 0.0
) -> Callable[..., Any]:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        try:
            response = behaviour(_decoded(request), context)
            _log_call(method, context, started, ok_log_min_ms=ok_log_min_ms)
            return response
        except Exception as exc:
            if _already_aborted(context):
                raise
            _log_call(method, context, started, exc)
            abort_with(context, exc)
            raise  # unreachable: abort raises

    return wrapped


def _streaming(
    behaviour: Callable[[Any, grpc.ServicerContext], Iterator[Any]], method: str, ok_log_min_ms: float = 0.0
) -> Callable[..., Any]:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            yield from behaviour(_decoded(request), context)
            _log_call(method, context, started, ok_log_min_ms=ok_log_min_ms)
        except Exception as exc:
            if _already_aborted(context):
                raise
            _log_call(method, context, started, exc)
            abort_with(context, exc)

    return wrapped


def _already_aborted(context: grpc.ServicerContext) -> bool:
    # context.abort() raises an Exception after setting the code; let it through untouched.
    code = getattr(context, "code", lambda: None)()
    return code is not None and code != grpc.StatusCode.OK


class _RpcInstruments:
    """Created on first use, so they bind to the meter provider the service installed."""

    def __init__(self) -> None:
        self.calls = meter().create_counter("citydata_rpc_calls", description="gRPC calls by method and outcome")
        self.duration = meter().create_histogram("citydata_rpc_duration", unit="ms", description="gRPC call duration")


_instruments: _RpcInstruments | None = None


def _log_call(
    method: str,
    context: grpc.ServicerContext,
    started: float,
    exc: BaseException | None = None,
    ok_log_min_ms: float = 0.0,
) -> None:
    global _instruments
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    outcome = type(exc).__name__ if exc is not None else "OK"
    if exc is not None or elapsed_ms >= ok_log_min_ms:
        log.info("rpc", extra={"method": method, "outcome": outcome, "duration_ms": elapsed_ms})
    if _instruments is None:
        _instruments = _RpcInstruments()
    attributes = {"rpc.method": method, "outcome": outcome}
    _instruments.calls.add(1, attributes)
    _instruments.duration.record(elapsed_ms, attributes)


@dataclass
class Worker:
    """A background loop (outbox relay, consumer, watcher) run on its own thread until stop."""

    name: str
    run: Callable[[threading.Event], None]


@dataclass
class ServiceHost:
    """One service process: its gRPC server plus its background workers."""

    service: str
    address: str
    registrars: list[Registrar]
    service_names: list[str]
    workers: list[Worker] = field(default_factory=list)
    grace_seconds: float = 10.0
    drain_delay_seconds: float = 1.0
    max_workers: int = 16
    credentials: grpc.ServerCredentials | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    # Dependencies the service cannot serve without (its database): while one fails, the named
    # services report NOT_SERVING (readiness) and the overall "" status stays SERVING (liveness),
    # so an orchestrator stops routing calls here without restarting a process that will recover.
    readiness_checks: dict[str, Callable[[], None]] = field(default_factory=dict)
    readiness_interval_seconds: float = 2.0
    # Successful calls faster than this get no log line (metrics still count them); 0 logs every call.
    ok_call_log_min_ms: float = 0.0

    def __post_init__(self) -> None:
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix=f"{self.service}-rpc"),
            interceptors=[server_interceptor(), CallInterceptor(self.ok_call_log_min_ms)],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._threads: list[threading.Thread] = []

    def start(self) -> int:
        for register in self.registrars:
            register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [
            *self.service_names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ]
        reflection.enable_server_reflection(names, self.server)
        # Explicit credentials (the gateway's) win; else <SERVICE>_TLS_* from the environment (kit.tls).
        credentials = self.credentials or server_credentials_for(self.service, self.address)
        if credentials is not None:
            port = self.server.add_secure_port(self.address, credentials)
        else:
            port = self.server.add_insecure_port(self.address)
        if port == 0:
            raise OSError(f"{self.service}: cannot listen on {self.address} (port busy?)")
        self.server.start()
        for worker in self.workers:
            thread = threading.Thread(target=self._run_worker, args=(worker,), name=worker.name, daemon=True)
            thread.start()
            self._threads.append(thread)
        for name in ["", *self.service_names]:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.readiness_checks:
            thread = threading.Thread(target=self._watch_readiness, name=f"{self.service}-readiness", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("service started", extra={"service": self.service, "address": self.address, "port": port})
        return port

    def _watch_readiness(self) -> None:
        ready = True
        while not self.stop_event.wait(self.readiness_interval_seconds):
            failing = self._failing_dependencies()
            if bool(failing) == ready:  # the state changed
                ready = not failing
                status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
                for name in self.service_names:
                    self.health.set(name, status)
                if ready:
                    log.info("dependencies reachable again: SERVING", extra={"service": self.service})
                else:
                    log.warning("dependency unreachable: NOT_SERVING", extra={"service": self.service, **failing})

    def _failing_dependencies(self) -> dict[str, str]:
        failing: dict[str, str] = {}
        for name, check in self.readiness_checks.items():
            try:
                check()
            except Exception as exc:
                failing[name] = type(exc).__name__
        return failing

    def _run_worker(self, worker: Worker) -> None:
        while not self.stop_event.is_set():
            try:
                worker.run(self.stop_event)
                return
            except Exception:
                log.exception("worker crashed; restarting in 1s", extra={"worker": worker.name})
                self.stop_event.wait(1.0)

    def stop(self) -> None:
        """Graceful: report NOT_SERVING, keep answering for a short drain delay so load balancers
        notice, let in-flight calls finish within the grace period, then stop the workers."""
        log.info("shutting down", extra={"service": self.service, "grace_s": self.grace_seconds})
        self.health.enter_graceful_shutdown()
        time.sleep(self.drain_delay_seconds)
        self.server.stop(self.grace_seconds).wait()
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=self.grace_seconds)
        log.info("service stopped", extra={"service": self.service})

    def run_until_signal(self) -> None:
        done = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            log.info("signal received", extra={"signal": signal.Signals(signum).name})
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        done.wait()
        self.stop()


def registrar(add_fn: Callable[[Any, grpc.Server], None], servicer: Any) -> Registrar:
    return lambda server: add_fn(servicer, server)


def full_names(*services: Iterable[str]) -> list[str]:
    return [name for group in services for name in group]
