"""Who is calling: the agency code from the caller's client certificate, or (development only)
from a static bearer token.

Certificates: the city PKI issues each agency system a client certificate whose subject
organizationalUnitName (OU) is the agency's code, e.g. `OU=STP, O=Ho Chi Minh City,
CN=civil-registry.stp`. The TLS handshake (require_client_auth, CA bundle from
GATEWAY_CLIENT_CA) has already checked the chain; here we read the OU and insist on the clientAuth
extended key usage, so a server certificate from the same CA cannot act as a client.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kit.errors import Unauthenticated

AGENCY_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,63}$")


@dataclass(frozen=True)
class Caller:
    agency: str
    authenticated_by: str  # "certificate" or "dev-token"


class Identity(Protocol):
    def caller_of(self, context: grpc.ServicerContext) -> Caller | None:
        """The caller, or None when this method finds no credential (another may)."""
        ...


def agency_from_certificate(certificate: x509.Certificate) -> str:
    units = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if len(units) != 1:
        raise Unauthenticated("the client certificate must name exactly one agency (subject OU)")
    agency = str(units[0].value)
    if not AGENCY_CODE.match(agency):
        raise Unauthenticated(f"the client certificate's OU {agency!r} is not an agency code")
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise Unauthenticated("the client certificate is not meant for client authentication") from None
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise Unauthenticated("the client certificate is not meant for client authentication")
    return agency


class CertificateIdentity:
    def caller_of(self, context: grpc.ServicerContext) -> Caller | None:
        pem: Any = context.auth_context().get("x509_pem_cert")
        if not pem:
            return None
        certificate = x509.load_pem_x509_certificate(pem[0])
        return Caller(agency_from_certificate(certificate), "certificate")


class DevTokenIdentity:
    """`authorization: Bearer <token>` -> agency, from a TOML file `[tokens] "<token>" = "AGENCY"`.
    Tokens are kept only as sha256 digests, so lookups do not compare secrets byte by byte."""

    def __init__(self, agency_by_token: dict[str, str]) -> None:
        self._agency_by_digest = {_digest(token): agency for token, agency in agency_by_token.items()}

    @classmethod
    def from_file(cls, path: Path) -> DevTokenIdentity:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        tokens = document.get("tokens", {})
        if not isinstance(tokens, dict) or not all(isinstance(a, str) for a in tokens.values()):
            raise ValueError(f'{path}: expected a [tokens] table of "token" = "AGENCY"')
        return cls(tokens)

    def caller_of(self, context: grpc.ServicerContext) -> Caller | None:
        header = dict(context.invocation_metadata()).get("authorization")
        if not isinstance(header, str) or not header.startswith("Bearer "):
            return None
        agency = self._agency_by_digest.get(_digest(header.removeprefix("Bearer ").strip()))
        if agency is None:
            raise Unauthenticated("unknown bearer token")
        return Caller(agency, "dev-token")


@dataclass(frozen=True)
class IdentityChain:
    """Tries each method in turn; a call nobody recognises is UNAUTHENTICATED."""

    methods: tuple[Identity, ...]

    def caller_of(self, context: grpc.ServicerContext) -> Caller:
        for method in self.methods:
            caller = method.caller_of(context)
            if caller is not None:
                return caller
        raise Unauthenticated("no client certificate or credential identifies the calling agency")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
