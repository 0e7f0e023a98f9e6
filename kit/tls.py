"""TLS between services, with certificates from the city PKI.

Server side (ServiceHost applies it): `<SERVICE>_TLS_CERT` and `<SERVICE>_TLS_KEY` (PEM files)
turn TLS on; `<SERVICE>_TLS_CLIENT_CA` additionally requires every client to present a
certificate issued by that CA (mutual TLS).

Client side (service-to-service calls, `secure_channel_to`): `CITYDATA_TLS_CA` (the city CA the
servers' certificates chain to) turns TLS on; `CITYDATA_TLS_CLIENT_CERT` + `CITYDATA_TLS_CLIENT_KEY`
present a client certificate (needed when the server enforces mTLS); `CITYDATA_TLS_SERVER_NAME`
overrides the name checked against the server certificate (when dialling an IP address).
A `<SERVICE>_` prefixed variable wins over the shared one, as everywhere in kit.config.

The rule: with `CITYDATA_ENV=production` every gRPC server and every service-to-service channel
must use TLS; a service without its TLS configuration refuses to start (ConfigError). In any other
environment (`make run`, tests: the default is `development`) TLS is used when configured and
plaintext otherwise, with a warning when a plaintext server listens beyond loopback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from kit.config import ConfigError

log = logging.getLogger(__name__)

PRODUCTION = "production"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def environment(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return (env.get("CITYDATA_ENV") or "development").strip().lower()


def tls_required(environ: Mapping[str, str] | None = None) -> bool:
    return environment(environ) == PRODUCTION


def _client_setting(environ: Mapping[str, str], service: str | None, name: str) -> str:
    """`<SERVICE>_<name>` when the caller names itself and sets it, else `CITYDATA_<name>`."""
    prefixed = environ.get(f"{service.upper()}_{name}", "") if service else ""
    return prefixed or environ.get(f"CITYDATA_{name}", "")


def _read(variable: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}={path}: cannot read ({exc.strerror})") from None


@dataclass(frozen=True)
class ServerTls:
    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes | None  # set: mutual TLS, clients must present a certificate from it

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.client_ca_pem,
            require_client_auth=self.client_ca_pem is not None,
        )


def server_tls_from_env(service: str, environ: Mapping[str, str] | None = None) -> ServerTls | None:
    """The service's TLS files, or None when none is configured; half a configuration is an error."""
    env = os.environ if environ is None else environ
    prefix = service.upper()
    cert, key, client_ca = (env.get(f"{prefix}_TLS_{n}", "") for n in ("CERT", "KEY", "CLIENT_CA"))
    if not cert and not key:
        if client_ca:
            raise ConfigError(f"{prefix}_TLS_CLIENT_CA is set without {prefix}_TLS_CERT and {prefix}_TLS_KEY")
        return None
    if not (cert and key):
        raise ConfigError(f"set both {prefix}_TLS_CERT and {prefix}_TLS_KEY, or neither")
    return ServerTls(
        _read(f"{prefix}_TLS_CERT", cert),
        _read(f"{prefix}_TLS_KEY", key),
        _read(f"{prefix}_TLS_CLIENT_CA", client_ca) if client_ca else None,
    )


def server_credentials_for(
    service: str, address: str, environ: Mapping[str, str] | None = None
) -> grpc.ServerCredentials | None:
    """What ServiceHost listens with: TLS when configured; plaintext (None) only outside production."""
    tls = server_tls_from_env(service, environ)
    if tls is not None:
        log.info(
            "gRPC server uses TLS",
            extra={"service": service, "mutual_tls": tls.client_ca_pem is not None, "address": address},
        )
        return tls.credentials()
    prefix = service.upper()
    if tls_required(environ):
        raise ConfigError(
            f"CITYDATA_ENV=production requires TLS: set {prefix}_TLS_CERT and {prefix}_TLS_KEY "
            f"(and {prefix}_TLS_CLIENT_CA for mutual TLS)"
        )
    host = address.rsplit(":", 1)[0]
    if host not in LOOPBACK_HOSTS:
        log.warning(
            "gRPC server is PLAINTEXT on a non-loopback address (development only)",
            extra={"service": service, "address": address},
        )
    return None


def channel_credentials_from_env(
    environ: Mapping[str, str] | None = None, service: str | None = None
) -> grpc.ChannelCredentials | None:
    """Client credentials trusting the city CA (plus a client certificate if configured), or None."""
    env = os.environ if environ is None else environ
    ca, cert, key = (_client_setting(env, service, n) for n in ("TLS_CA", "TLS_CLIENT_CERT", "TLS_CLIENT_KEY"))
    if not ca:
        if cert or key:
            raise ConfigError("CITYDATA_TLS_CLIENT_CERT/KEY are set without CITYDATA_TLS_CA")
        if tls_required(env):
            raise ConfigError("CITYDATA_ENV=production requires CITYDATA_TLS_CA for calls between services")
        return None
    if bool(cert) != bool(key):
        raise ConfigError("set both CITYDATA_TLS_CLIENT_CERT and CITYDATA_TLS_CLIENT_KEY, or neither")
    return grpc.ssl_channel_credentials(
        root_certificates=_read("CITYDATA_TLS_CA", ca),
        private_key=_read("CITYDATA_TLS_CLIENT_KEY", key) if key else None,
        certificate_chain=_read("CITYDATA_TLS_CLIENT_CERT", cert) if cert else None,
    )


def secure_channel_to(
    address: str,
    options: Sequence[tuple[str, Any]] = (),
    environ: Mapping[str, str] | None = None,
    service: str | None = None,
) -> grpc.Channel:
    """A channel to another CityData service: TLS with the city CA when configured (required in
    production), plaintext otherwise. `service` names the caller, for `<SERVICE>_TLS_*` overrides."""
    env = os.environ if environ is None else environ
    credentials = channel_credentials_from_env(env, service)
    if credentials is None:
        return grpc.insecure_channel(address, options=list(options))
    server_name = env.get("CITYDATA_TLS_SERVER_NAME", "")
    extra = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(address, credentials, options=[*options, *extra])
