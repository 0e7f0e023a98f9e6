"""Assembles the gateway process (`python -m services.gateway`): used by `__main__` and by the tests.

Security modes, chosen from the environment and logged at start-up:
* mTLS (production): GATEWAY_TLS_CERT, GATEWAY_TLS_KEY and GATEWAY_CLIENT_CA all set. Agencies
  are identified by their client certificates (subject OU = agency code).
* dev tokens: GATEWAY_DEV_TOKENS=path to a TOML `[tokens]` table. Static bearer tokens, with a
  loud warning; combined with mTLS when both are configured.
* zero configuration (`make run` on a laptop): neither is set. The gateway writes dev tokens for
  every agency of the policy to var/gateway/dev-tokens.toml and serves plaintext, but only on a
  loopback address; anywhere else it refuses to start.

The same identities serve the JSON/HTTP port (GATEWAY_HTTP_PORT, 8080): HTTPS with client
certificates when TLS is configured (optional client certificate when dev tokens are configured
too), bearer tokens in dev-token mode. The read model's consumer group is GATEWAY_READMODEL_GROUP
(default `gateway-readmodel`).
"""

from __future__ import annotations

import logging
import os
import secrets
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from citydata.v1 import gateway_pb2_grpc

from kit.clock import Clock, SystemClock
from kit.config import DEFAULT_PORTS, REPO_ROOT, ConfigError, env_bool, env_int, var_dir
from kit.grpc_server import ServiceHost, Worker, registrar
from kit.runtime import ServiceRuntime, start_runtime
from services.gateway import store
from services.gateway.api.catalog import forwarded_methods
from services.gateway.api.gate import AUDIT_TOPIC, AuditLog, Gatekeeper
from services.gateway.api.identity import CertificateIdentity, DevTokenIdentity, Identity, IdentityChain
from services.gateway.api.policy_file import PolicySource, load_policy
from services.gateway.api.proxy import ProxyHandler, UpstreamChannels
from services.gateway.api.reads import ReadModelReads
from services.gateway.api.service import SERVICE, GatewayServicer
from services.gateway.domain.ratelimit import RateLimiter
from services.gateway.http.server import GatewayHttpServer, http_worker, tls_context
from services.gateway.readmodel.model import ReadModel, readmodel_group
from services.gateway.readmodel.procedure_facts import ProcedureFacts

log = logging.getLogger("citydata.gateway")

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path


@dataclass(frozen=True)
class GatewayOptions:
    policy_path: Path
    policy_check_seconds: float = 1.0
    tls: TlsFiles | None = None
    dev_tokens: Path | None = None

    @property
    def mode(self) -> str:
        if self.tls and self.dev_tokens:
            return "mtls+dev-tokens"
        return "mtls" if self.tls else "dev-tokens"


def options_from_env(environ: Mapping[str, str], grpc_host: str) -> GatewayOptions:
    policy = Path(environ.get("GATEWAY_POLICY") or REPO_ROOT / "deploy" / "gateway" / "policy.toml")
    check = float(environ.get("GATEWAY_POLICY_CHECK_SECONDS") or 1.0)
    tls_vars = [environ.get(n, "") for n in ("GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY", "GATEWAY_CLIENT_CA")]
    if any(tls_vars) and not all(tls_vars):
        raise ConfigError("set all of GATEWAY_TLS_CERT, GATEWAY_TLS_KEY and GATEWAY_CLIENT_CA, or none")
    tls = TlsFiles(*(Path(v) for v in tls_vars)) if all(tls_vars) else None
    tokens = Path(environ["GATEWAY_DEV_TOKENS"]) if environ.get("GATEWAY_DEV_TOKENS") else None
    if tls is None and tokens is None:
        if grpc_host not in LOOPBACK_HOSTS:
            raise ConfigError(
                f"no TLS configured and GATEWAY_GRPC_HOST={grpc_host} is not loopback: set "
                "GATEWAY_TLS_CERT/GATEWAY_TLS_KEY/GATEWAY_CLIENT_CA (or GATEWAY_DEV_TOKENS)"
            )
        tokens = generated_dev_tokens(policy)
    return GatewayOptions(policy, check, tls, tokens)


def generated_dev_tokens(policy_path: Path) -> Path:
    """Tokens for every agency of the policy, written to var/gateway/dev-tokens.toml; kept across
    restarts, rewritten when the policy's agencies changed (e.g. codes renamed in the directory)."""
    path = var_dir() / "gateway" / "dev-tokens.toml"
    agencies = sorted(load_policy(policy_path).agencies)
    if not path.exists() or _token_agencies(path) != set(agencies):
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            "# Generated development tokens: `authorization: Bearer <token>`. Never use in production.",
            "[tokens]",
        ]
        lines += [f'"dev-{code.lower()}-{secrets.token_hex(8)}" = "{code}"' for code in agencies]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path


def _token_agencies(path: Path) -> set[str]:
    try:
        tokens = tomllib.loads(path.read_text(encoding="utf-8")).get("tokens", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return set()
    return {str(agency) for agency in tokens.values()} if isinstance(tokens, dict) else set()


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(tls.key.read_bytes(), tls.cert.read_bytes())],
        root_certificates=tls.client_ca.read_bytes(),
        require_client_auth=True,
    )


def identity_for(options: GatewayOptions) -> IdentityChain:
    methods: list[Identity] = []
    if options.tls is not None:
        methods.append(CertificateIdentity())
    if options.dev_tokens is not None:
        methods.append(DevTokenIdentity.from_file(options.dev_tokens))
    return IdentityChain(tuple(methods))


def announce_mode(options: GatewayOptions, address: str) -> None:
    if options.tls is not None:
        log.info(
            "gateway security: mutual TLS, agencies identified by client certificate (subject OU)",
            extra={"mode": options.mode, "client_ca": str(options.tls.client_ca), "address": address},
        )
    if options.dev_tokens is not None:
        log.warning(
            "!!! DEVELOPMENT MODE: static bearer tokens identify agencies%s. NEVER USE IN PRODUCTION !!!",
            "" if options.tls else ", transport is PLAINTEXT",
            extra={"mode": options.mode, "tokens_file": str(options.dev_tokens), "address": address},
        )


@dataclass
class GatewayProcess:
    host: ServiceHost
    http: GatewayHttpServer | None


def build_host(
    runtime: ServiceRuntime,
    options: GatewayOptions,
    address: str,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    workers: list[Worker] | None = None,
) -> ServiceHost:
    """The gateway's gRPC host: the proxy for every forwarded RPC plus GatewayService."""
    return build_gateway(runtime, options, address, environ, clock, workers).host


def http_tls(options: GatewayOptions) -> ssl.SSLContext | None:
    if options.tls is None:
        return None
    tls = options.tls
    return tls_context(tls.cert, tls.key, tls.client_ca, require_client_certificate=options.dev_tokens is None)


def build_gateway(
    runtime: ServiceRuntime,
    options: GatewayOptions,
    address: str,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    workers: list[Worker] | None = None,
    read_model: ReadModel | None = None,
    http_address: tuple[str, int] | None = None,
) -> GatewayProcess:
    """The gRPC host (proxy + GatewayService) and, when `http_address` is given, the JSON/HTTP
    server as one of its workers. Without `read_model` the read RPCs answer UNAVAILABLE."""
    clock = clock or SystemClock()
    workers = list(workers) if workers is not None else []
    gate = Gatekeeper(
        identity=identity_for(options),
        policies=PolicySource(options.policy_path, options.policy_check_seconds),
        limiter=RateLimiter(clock),
        audit=AuditLog(runtime.uow, clock),
    )
    methods = forwarded_methods(os.environ if environ is None else environ)
    proxy = ProxyHandler(methods, gate, UpstreamChannels())
    forwarded_services = sorted({path.split("/")[1] for path in methods})
    log.info("forwarding", extra={"services": forwarded_services, "rpcs": len(methods)})
    reads = ReadModelReads(runtime.sessions, read_model) if read_model is not None else None
    servicer = GatewayServicer(gate, runtime.sessions, reads)
    http = GatewayHttpServer(http_address, servicer, http_tls(options)) if http_address is not None else None
    if http is not None:
        workers.append(http_worker(http))
    host = ServiceHost(
        "gateway",
        address,
        [
            lambda server: server.add_generic_rpc_handlers((proxy,)),
            registrar(gateway_pb2_grpc.add_GatewayServiceServicer_to_server, servicer),
        ],
        [SERVICE, *forwarded_services],
        workers=workers,
        grace_seconds=runtime.settings.shutdown_grace_seconds,
        credentials=server_credentials(options.tls) if options.tls else None,
        readiness_checks=runtime.readiness_checks(),
    )
    return GatewayProcess(host, http)


def main() -> None:
    runtime = start_runtime("gateway", store.metadata, store.tables, [AUDIT_TOPIC])
    settings = runtime.settings
    options = options_from_env(os.environ, settings.grpc_host)
    announce_mode(options, settings.grpc_address)
    # GATEWAY_READMODEL=false runs a replica that only proxies (its read RPCs answer UNAVAILABLE).
    read_model = ReadModel(runtime, readmodel_group()) if env_bool("GATEWAY_READMODEL", True) else None
    dossier_address = os.environ.get("DOSSIER_ADDRESS") or f"127.0.0.1:{DEFAULT_PORTS['dossier']}"
    workers = [read_model.worker(), ProcedureFacts(runtime, dossier_address).worker()] if read_model else []
    if settings.relay_enabled:
        workers.insert(0, runtime.relay_worker())
    http_address = (settings.grpc_host, env_int("GATEWAY_HTTP_PORT", 8080))
    gateway = build_gateway(
        runtime, options, settings.grpc_address, workers=workers, read_model=read_model, http_address=http_address
    )
    gateway.host.run_until_signal()
