"""JSON over HTTP (GATEWAY_HTTP_PORT, 8080): the read RPCs of GatewayService, the OpenAPI
document, a health probe and the operators' dashboard (static files).

Each JSON route calls the gRPC servicer method itself with an adapter standing in for the gRPC
context, so identity, rights, purpose, field groups, rate limits and audit are the very same code
as for gRPC. Authentication: `Authorization: Bearer <dev token>` (when dev tokens are configured)
or, when the gateway has TLS files, HTTPS with the agency's client certificate. Errors are JSON
`{code, message, details}` with the HTTP status that corresponds to the gRPC code.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
from citydata.v1 import dossier_pb2, gateway_pb2, tasks_pb2
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2

from kit.errors import DomainError, FieldViolation, InvalidArgument
from kit.grpc_errors import status_for
from kit.grpc_server import Worker
from services.gateway.api.service import GatewayServicer
from services.gateway.domain.kpi import Dimension, parse_dimensions, parse_period
from services.gateway.http.openapi import openapi_document

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
NATIONAL_ID = re.compile(r"^\d{12}$")

# google.rpc.Code → HTTP status, as in google/rpc/code.proto and the HTTP/JSON transcoding rules.
HTTP_STATUS = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}
LEVELS = {
    "city": dossier_pb2.PROCEDURE_AUTHORITY_LEVEL_CITY,
    "district": dossier_pb2.PROCEDURE_AUTHORITY_LEVEL_DISTRICT,
    "commune": dossier_pb2.PROCEDURE_AUTHORITY_LEVEL_COMMUNE,
}
DIMENSIONS = {
    Dimension.AGENCY: gateway_pb2.KPI_DIMENSION_AGENCY,
    Dimension.PROCEDURE: gateway_pb2.KPI_DIMENSION_PROCEDURE,
    Dimension.LEVEL: gateway_pb2.KPI_DIMENSION_AUTHORITY_LEVEL,
    Dimension.PERIOD: gateway_pb2.KPI_DIMENSION_PERIOD,
}


class HttpCallContext:
    """The part of grpc.ServicerContext the gate and the servicer use, from an HTTP request."""

    def __init__(self, headers: dict[str, str], peer_certificate_der: bytes | None) -> None:
        self._metadata = tuple(headers.items())
        self._pem = (
            [x509.load_der_x509_certificate(peer_certificate_der).public_bytes(Encoding.PEM)]
            if peer_certificate_der
            else []
        )
        self.trailing_metadata: tuple[tuple[str, str], ...] = ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": self._pem} if self._pem else {}

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing_metadata = tuple(metadata)

    def time_remaining(self) -> None:
        return None

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise RuntimeError(f"{code.name}: {details}")  # only the proxy aborts; never reached here


@dataclass(frozen=True)
class JsonRoute:
    pattern: re.Pattern[str]
    call: Callable[[GatewayServicer, re.Match[str], dict[str, str], HttpCallContext], Message]


def _one(query: dict[str, list[str]]) -> dict[str, str]:
    return {name: values[-1] for name, values in query.items()}


def _int(raw: str, name: str) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        raise InvalidArgument([FieldViolation(name, "a whole number")]) from None


def citizen_profile(s: GatewayServicer, m: re.Match[str], q: dict[str, str], c: HttpCallContext) -> Message:
    subject = m["id"]
    request = (
        gateway_pb2.GetCitizenProfileRequest(national_id=subject)
        if NATIONAL_ID.match(subject)
        else gateway_pb2.GetCitizenProfileRequest(registry_id=subject)
    )
    return s.GetCitizenProfile(request, c)  # type: ignore[arg-type]


def business_profile(s: GatewayServicer, m: re.Match[str], q: dict[str, str], c: HttpCallContext) -> Message:
    return s.GetBusinessProfile(gateway_pb2.GetBusinessProfileRequest(registry_id=m["id"]), c)  # type: ignore[arg-type]


def kpis_request(q: dict[str, str]) -> gateway_pb2.GetDossierKpisRequest:
    level = q.get("level", "").lower()
    if level and level not in LEVELS:
        raise InvalidArgument([FieldViolation("level", "city, district or commune")])
    period = parse_period(q.get("period", ""))
    return gateway_pb2.GetDossierKpisRequest(
        agency_code=q.get("agency", ""),
        procedure_code=q.get("procedure", ""),
        authority_level=LEVELS.get(level, dossier_pb2.PROCEDURE_AUTHORITY_LEVEL_UNSPECIFIED),
        from_date=q.get("from", ""),
        to_date=q.get("to", ""),
        group_by=[DIMENSIONS[d] for d in parse_dimensions(q.get("group_by", ""))],
        period=f"KPI_PERIOD_{period.name}",  # type: ignore[arg-type]
    )


def kpis(s: GatewayServicer, m: re.Match[str], q: dict[str, str], c: HttpCallContext) -> Message:
    return s.GetDossierKpis(kpis_request(q), c)  # type: ignore[arg-type]


def data_access(s: GatewayServicer, m: re.Match[str], q: dict[str, str], c: HttpCallContext) -> Message:
    request = gateway_pb2.ListDataAccessRequest(
        page_size=_int(q.get("page_size", ""), "page_size"), page_token=q.get("page_token", "")
    )
    if q.get("national_id"):
        request.national_id = q["national_id"]
    elif q.get("registry_id"):
        request.registry_id = q["registry_id"]
    elif q.get("tax_code"):
        request.tax_code = q["tax_code"]
    return s.ListDataAccess(request, c)  # type: ignore[arg-type]


def petition_kind(raw: str) -> int:
    """`complaint`, `PETITION_KIND_COMPLAINT` (case-insensitive, prefix optional); "" for every kind."""
    if not raw:
        return tasks_pb2.PETITION_KIND_UNSPECIFIED
    name = raw.strip().upper()
    name = name if name.startswith("PETITION_KIND_") else "PETITION_KIND_" + name
    try:
        kind = tasks_pb2.PetitionKind.Value(name)
    except ValueError:
        kind = tasks_pb2.PETITION_KIND_UNSPECIFIED
    if kind == tasks_pb2.PETITION_KIND_UNSPECIFIED:
        raise InvalidArgument([FieldViolation("petition_kind", "feedback, complaint or denunciation")])
    return kind


def follow_up_kpis(s: GatewayServicer, m: re.Match[str], q: dict[str, str], c: HttpCallContext) -> Message:
    request = gateway_pb2.GetFollowUpKpisRequest(
        directive_id=q.get("directive_id", ""),
        agency=q.get("agency", ""),
        petition_kind=petition_kind(q.get("petition_kind", "")),  # type: ignore[arg-type]
    )
    return s.GetFollowUpKpis(request, c)  # type: ignore[arg-type]


def read_model_status(s: GatewayServicer, m: re.Match[str], q: dict[str, str], c: HttpCallContext) -> Message:
    return s.GetReadModelStatus(gateway_pb2.GetReadModelStatusRequest(), c)  # type: ignore[arg-type]


ROUTES = (
    JsonRoute(re.compile(r"^/v1/citizens/(?P<id>[^/]+)/profile$"), citizen_profile),
    JsonRoute(re.compile(r"^/v1/businesses/(?P<id>[^/]+)/profile$"), business_profile),
    JsonRoute(re.compile(r"^/v1/kpis$"), kpis),
    JsonRoute(re.compile(r"^/v1/data-access$"), data_access),
    JsonRoute(re.compile(r"^/v1/follow-up/kpis$"), follow_up_kpis),
    JsonRoute(re.compile(r"^/v1/read-model/status$"), read_model_status),
)


def to_json(message: Message) -> bytes:
    return json_format.MessageToJson(message, always_print_fields_with_no_presence=True, indent=None).encode()


def error_body(exc: BaseException) -> tuple[int, bytes]:
    status = status_for(exc)
    details = [json_format.MessageToDict(detail) for detail in status.details]
    body = {"code": code_pb2.Code.Name(status.code), "message": status.message, "details": details}
    return HTTP_STATUS.get(status.code, 500), json.dumps(body, ensure_ascii=False).encode()


class _Handler(BaseHTTPRequestHandler):
    server: GatewayHttpServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            return self._send(200, b'{"status":"SERVING"}', "application/json")
        if url.path == "/openapi.json":
            return self._send(200, json.dumps(self.server.openapi, ensure_ascii=False).encode(), "application/json")
        for route in ROUTES:
            match = route.pattern.match(url.path)
            if match:
                return self._json(route, match, _one(parse_qs(url.query)))
        return self._static(url.path)

    def _json(self, route: JsonRoute, match: re.Match[str], query: dict[str, str]) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "purpose" in query and "x-citydata-purpose" not in headers:
            headers["x-citydata-purpose"] = query["purpose"]
        context = HttpCallContext(headers, self._peer_certificate())
        try:
            body = to_json(route.call(self.server.servicer, match, query, context))
        except Exception as exc:
            if not isinstance(exc, DomainError):
                log.exception("HTTP read failed", extra={"path": self.path})
            status, body = error_body(exc)
            return self._send(status, body, "application/json")
        extra = {f"X-Citydata-{k.removeprefix('x-citydata-').title()}": v for k, v in context.trailing_metadata}
        self._send(200, body, "application/json", extra)

    def _static(self, path: str) -> None:
        name = "index.html" if path in ("/", "/index.html") else path.removeprefix("/static/")
        file = (STATIC_DIR / name).resolve()
        if STATIC_DIR.resolve() not in file.parents or not file.is_file() or file.suffix not in STATIC_TYPES:
            status, body = error_body(_not_found(path))
            return self._send(status, body, "application/json")
        self._send(200, file.read_bytes(), STATIC_TYPES[file.suffix])

    def _peer_certificate(self) -> bytes | None:
        if isinstance(self.connection, ssl.SSLSocket):
            return self.connection.getpeercert(binary_form=True)
        return None

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http " + format, *args)


def _not_found(path: str) -> DomainError:
    from kit.errors import NotFound

    return NotFound("path", path)


class GatewayHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], servicer: GatewayServicer, tls: ssl.SSLContext | None) -> None:
        super().__init__(address, _Handler)
        self.servicer = servicer
        self.openapi = openapi_document()
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def tls_context(cert: Path, key: Path, client_ca: Path, require_client_certificate: bool) -> ssl.SSLContext:
    """HTTPS with agency client certificates from the same CA as gRPC. Optional when dev tokens
    are configured too (a browser without a certificate then uses a token)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(client_ca)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    return context


def http_worker(server: GatewayHttpServer) -> Worker:
    def run(stop: threading.Event) -> None:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="gateway-http")
        thread.start()
        log.info("HTTP listening", extra={"port": server.port, "tls": isinstance(server.socket, ssl.SSLSocket)})
        stop.wait()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return Worker("gateway-http", run)
