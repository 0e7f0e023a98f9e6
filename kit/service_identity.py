"""Calls made on behalf of an agency, between services: who may say which agency a call is for.

The gateway (after it authenticated an agency) and the dossier service (for a dossier's agency)
call other services with `x-citydata-agency: <code>`. A service that acts on that header (signing)
must know it comes from one of them and not from anyone who can reach its port. Two proofs:

* **mutual TLS** (the only one accepted with CITYDATA_ENV=production): the caller presents a client
  certificate from the city PKI whose subject OU names the calling service (GATEWAY, DOSSIER); the
  TLS handshake has checked the chain against `<SERVICE>_TLS_CLIENT_CA`.
* **a caller assertion** (development, `make run`, tests): `x-citydata-caller:
  v1:<service>:<unix seconds>:<hex HMAC-SHA256>` under a key the services share, over the service,
  the agency, the RPC path and the time; accepted for MAX_AGE_SECONDS either way. The key is
  CITYDATA_SERVICE_KEY (the key itself) or the file CITYDATA_SERVICE_KEY_FILE names; when neither
  is set, var/secrets/service-key, generated 0600 on first use (`make run`'s supervisor creates it
  before it starts the services). The key never travels: only the HMAC does.

Clients attach assertions with `AssertingInterceptor` (every call that carries
`x-citydata-agency` gets one); servers check with `CallerVerifier`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kit.config import ConfigError, var_dir
from kit.errors import Unauthenticated
from kit.secret_files import ensure_secret_file
from kit.tls import tls_required

log = logging.getLogger(__name__)

AGENCY_HEADER = "x-citydata-agency"
CALLER_HEADER = "x-citydata-caller"
VERSION = "v1"
MAX_AGE_SECONDS = 300
ENV_KEY = "CITYDATA_SERVICE_KEY"
ENV_KEY_FILE = "CITYDATA_SERVICE_KEY_FILE"
MIN_KEY_BYTES = 16


def default_key_path() -> Path:
    return var_dir() / "secrets" / "service-key"


def service_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The shared assertion key, or None in production (mutual TLS only there)."""
    env = os.environ if environ is None else environ
    if tls_required(env):
        return None
    if env.get(ENV_KEY):
        return _checked_key(env[ENV_KEY].strip().encode(), ENV_KEY)
    if env.get(ENV_KEY_FILE):
        return _read_key(Path(env[ENV_KEY_FILE]))
    return generated_key(default_key_path())


def generated_key(path: Path) -> bytes:
    """A random key kept in a 0600 file, created on first use (by whichever process is first)."""
    if ensure_secret_file(path):
        log.warning("generated the development service key (not for production)", extra={"key_file": str(path)})
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        raw = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{ENV_KEY_FILE}={path}: cannot read ({exc.strerror})") from None
    return _checked_key(raw, str(path))


def _checked_key(raw: bytes, where: str) -> bytes:
    if len(raw) < MIN_KEY_BYTES:
        raise ConfigError(f"the service key in {where} is too short (at least {MIN_KEY_BYTES} bytes)")
    return raw


def _mac(key: bytes, service: str, agency: str, method: str, at: int) -> str:
    message = "\n".join((VERSION, service, agency, method, str(at))).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CallerAssertions:
    """Signs `x-citydata-caller` for one calling service; without a key it adds nothing."""

    service: str
    key: bytes | None
    clock: Callable[[], float] = time.time

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> CallerAssertions:
        return cls(service.upper(), service_key(environ))

    def proof(self, agency: str, method: str) -> tuple[tuple[str, str], ...]:
        if self.key is None:
            return ()
        at = int(self.clock())
        value = f"{VERSION}:{self.service}:{at}:{_mac(self.key, self.service, agency, method, at)}"
        return ((CALLER_HEADER, value),)


def _with_proof(assertions: CallerAssertions, details: Any) -> Any:
    metadata = list(details.metadata or ())
    agencies = [str(value) for key, value in metadata if key == AGENCY_HEADER]
    if len(agencies) != 1 or any(key == CALLER_HEADER for key, _ in metadata):
        return details
    metadata += assertions.proof(agencies[0], details.method)
    return _CallDetails(details.method, details.timeout, tuple(metadata), details.credentials, details.wait_for_ready)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    method: str
    timeout: float | None
    metadata: tuple[tuple[str, str | bytes], ...] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None = field(default=None)


class AssertingInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds the caller assertion to every outgoing call that names an agency."""

    def __init__(self, assertions: CallerAssertions) -> None:
        self.assertions = assertions

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(_with_proof(self.assertions, details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(_with_proof(self.assertions, details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Iterator[Any]) -> Any:
        return continuation(_with_proof(self.assertions, details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Iterator[Any]) -> Any:
        return continuation(_with_proof(self.assertions, details), requests)


def asserting_channel(channel: grpc.Channel, service: str, environ: Mapping[str, str] | None = None) -> grpc.Channel:
    """`channel` with caller assertions of `service` on every call naming an agency."""
    return grpc.intercept_channel(channel, AssertingInterceptor(CallerAssertions.from_env(service, environ)))


@dataclass(frozen=True)
class CallerVerifier:
    """Accepts `x-citydata-agency` only from a trusted service, proven by certificate or assertion."""

    trusted: frozenset[str]
    key: bytes | None
    clock: Callable[[], float] = time.time

    def agency(self, context: grpc.ServicerContext, method: str) -> str:
        """The agency the call is made for (not yet checked against the directory)."""
        metadata = list(context.invocation_metadata() or ())
        agencies = [str(value) for key, value in metadata if key == AGENCY_HEADER]
        if not agencies:
            raise Unauthenticated(f"no caller identity: calls must come through the gateway ({AGENCY_HEADER})")
        if len(agencies) > 1:
            raise Unauthenticated(f"more than one {AGENCY_HEADER} value")
        agency = agencies[0]
        if self._certified_service(context) is None and self._asserted_service(metadata, agency, method) is None:
            raise Unauthenticated(
                f"{AGENCY_HEADER} is accepted only from {', '.join(sorted(self.trusted))} "
                "(a client certificate of the city PKI or a valid caller assertion)"
            )
        return agency

    def _certified_service(self, context: grpc.ServicerContext) -> str | None:
        pem: Any = context.auth_context().get("x509_pem_cert")
        if not pem:
            return None
        certificate = x509.load_pem_x509_certificate(pem[0])
        units = [str(u.value) for u in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        if len(units) != 1 or units[0] not in self.trusted or not _for_client_auth(certificate):
            return None
        return units[0]

    def _asserted_service(self, metadata: list[tuple[str, Any]], agency: str, method: str) -> str | None:
        values = [str(value) for key, value in metadata if key == CALLER_HEADER]
        if self.key is None or len(values) != 1:
            return None
        parts = values[0].split(":")
        if len(parts) != 4 or parts[0] != VERSION or parts[1] not in self.trusted or not parts[2].isdigit():
            return None
        _version, service, at, mac = parts
        if abs(self.clock() - int(at)) > MAX_AGE_SECONDS:
            return None
        expected = _mac(self.key, service, agency, method, int(at))
        return service if hmac.compare_digest(expected, mac) else None


def _for_client_auth(certificate: x509.Certificate) -> bool:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages
