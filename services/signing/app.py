"""Assembles the signing service: keystore, PKI and engine, the gRPC servicer, the CRL/TSA endpoint,
the host. Used by `__main__` (`python -m services.signing`: gRPC on port 50053, CRLs and TSA over
HTTP on 8053 by default) and by the tests.

Settings from the environment (kit.config and services/signing/README.md):
  SIGNING_DATABASE_URL         default SQLite var/signing.db; migrations run at start-up. Holds the PKI
                               state (CAs, certificates, revocations, CRLs): replicas share it
  SIGNING_STATE_DIR            exported CA certificates (ca/*.pem), file keys, a pki.json of older
                               versions (imported into the database once); default var/signing
  SIGNING_HTTP_PORT            CRL/TSA endpoint port (default 8053)
  SIGNING_TRUSTED_CALLERS      services whose `x-citydata-agency` is believed (default GATEWAY,DOSSIER:
                               the OU of their mTLS client certificate, or their caller assertion)
  CITYDATA_SERVICE_KEY[_FILE]  key of the caller assertions (development; generated under var/secrets
                               when unset); production accepts callers by mutual TLS only and needs
                               SIGNING_TLS_CERT, SIGNING_TLS_KEY and SIGNING_TLS_CLIENT_CA
Every agency of the directory (kit/data/agencies.toml) with `signs = true` gets its issuing CA at
start-up if it has none.
  CITYDATA_CRL_BASE_URL        URL put into new certificates (default http://<host>:<port>/crl)
  CITYDATA_PKCS11_MODULE/TOKEN/PIN   keys in a PKCS#11 token; otherwise the encrypted file
  CITYDATA_KEYSTORE_PASSWORD   keystore, whose password (if unset) is generated once into
                               <state dir>/keystore-password: fine for `make run`, not production.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from citydata.v1 import signing_pb2, signing_pb2_grpc
from sqlalchemy import Engine

from kit.clock import Clock, SystemClock
from kit.config import ConfigError, env_int, env_str, var_dir
from kit.grpc_server import ServiceHost, registrar
from kit.runtime import ServiceRuntime, start_runtime
from kit.secret_files import ensure_secret_file
from kit.tls import tls_required
from services.signing.api.caller import caller_verifier
from services.signing.api.servicer import TOPIC, SigningServicer
from services.signing.crypto.asn1_classes import set_up_all_classes
from services.signing.crypto.bootstrap import bootstrap_pki
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.keystore import (
    ENV_KEYSTORE_PASSWORD,
    ENV_MODULE,
    Keystore,
    describe_keystore,
    keystore_from_environment,
)
from services.signing.crypto.pki import Pki
from services.signing.http.server import PkiHttpServer
from services.signing.store import metadata, tables
from services.signing.store.audit import verify_audit_log

log = logging.getLogger("services.signing")

SERVICE_NAME = signing_pb2.DESCRIPTOR.services_by_name["SigningService"].full_name
DEFAULT_HTTP_PORT = 8053
PASSWORD_FILE = "keystore-password"


@dataclass(frozen=True)
class Signing:
    """The PKI and the engine over it, sharing one keystore and clock."""

    pki: Pki
    engine: SignatureEngine
    clock: Clock


def state_dir() -> Path:
    return Path(env_str("SIGNING_STATE_DIR", str(var_dir() / "signing")))


def require_mutual_tls(environ: Mapping[str, str]) -> None:
    """In production the agency header is believed only from a certified caller: mTLS is a must."""
    if tls_required(environ) and not environ.get("SIGNING_TLS_CLIENT_CA"):
        raise ConfigError(
            "CITYDATA_ENV=production: signing accepts callers by mutual TLS only; set SIGNING_TLS_CLIENT_CA "
            "(with SIGNING_TLS_CERT and SIGNING_TLS_KEY)"
        )


def open_keystore(environ: Mapping[str, str], directory: Path) -> Keystore:
    """PKCS#11 when configured; else the file keystore, with a generated password if none is set."""
    env = dict(environ)
    if not env.get(ENV_MODULE, "").strip() and not env.get(ENV_KEYSTORE_PASSWORD):
        env[ENV_KEYSTORE_PASSWORD] = generated_password(directory / PASSWORD_FILE)
    return keystore_from_environment(env, directory / "keys")


def generated_password(path: Path) -> str:
    """A random keystore password kept in a 0600 file, created on first use and reused after."""
    if ensure_secret_file(path):
        log.warning(
            "no keystore configured: file keystore with a generated password (development only)",
            extra={"password_file": str(path)},
        )
    return path.read_text().strip()


def open_signing(environ: Mapping[str, str], clock: Clock, crl_base_url: str, database: Engine) -> Signing:
    """Keystore, PKI on the service's database (bootstrapped: root, TSA, the agencies' CAs if
    missing) and engine."""
    directory = state_dir()
    keystore = open_keystore(environ, directory)
    log.info(describe_keystore(keystore))
    pki = Pki(keystore, directory, clock, crl_base_url=crl_base_url, database=database)
    result = bootstrap_pki(pki)
    log.info("PKI ready: " + result.summary(), extra={"state_dir": str(directory)})
    engine = SignatureEngine(pki, clock)
    set_up_all_classes()  # before any concurrent call: asn1crypto's first use of a class is not thread-safe
    return Signing(pki, engine, clock)


def build_host(
    runtime: ServiceRuntime, signing: Signing, address: str | None = None, http_port: int | None = None
) -> tuple[ServiceHost, PkiHttpServer]:
    """The gRPC server with the outbox relay and the CRL/TSA endpoint (tests pass port 0 for both)."""
    http = PkiHttpServer(
        signing.pki,
        signing.engine,
        runtime.settings.grpc_host,
        env_int("SIGNING_HTTP_PORT", DEFAULT_HTTP_PORT) if http_port is None else http_port,
    )
    servicer = SigningServicer(
        runtime.uow,
        signing.pki,
        signing.engine,
        signing.clock,
        lambda: verify_audit_log(runtime.engine),
        caller_verifier(),
    )
    workers = [runtime.relay_worker()] if runtime.settings.relay_enabled else []
    host = ServiceHost(
        service="signing",
        address=address or runtime.settings.grpc_address,
        registrars=[registrar(signing_pb2_grpc.add_SigningServiceServicer_to_server, servicer)],
        service_names=[SERVICE_NAME],
        workers=[*workers, http.worker()],
        grace_seconds=runtime.settings.shutdown_grace_seconds,
        readiness_checks=runtime.readiness_checks(),
    )
    return host, http


def main() -> None:
    require_mutual_tls(os.environ)
    runtime = start_runtime("signing", metadata, tables, [TOPIC])
    http_port = env_int("SIGNING_HTTP_PORT", DEFAULT_HTTP_PORT)
    crl_base_url = env_str("CITYDATA_CRL_BASE_URL", f"http://{runtime.settings.grpc_host}:{http_port}/crl")
    signing = open_signing(os.environ, SystemClock(), crl_base_url, runtime.engine)
    host, _ = build_host(runtime, signing, http_port=http_port)
    host.run_until_signal()
    runtime.engine.dispose()
