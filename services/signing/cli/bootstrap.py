"""Create the city's root CA, time-stamping unit and one issuing CA per agency, if missing.

    python -m services.signing.cli.bootstrap --state-dir var/signing [--agencies SXD,STP] [--database-url URL]

The agencies are those of the agency directory (kit/data/agencies.toml) with `signs = true`,
unless --agencies names some of them; the signing service runs the same bootstrap at start-up.

The PKI state goes to the signing database (--database-url, default SIGNING_DATABASE_URL as the
service reads it), which the service's replicas share. Idempotent: a second run creates nothing
and says so. Keys go to the keystore chosen by the
environment (see services/signing/README.md); with --dev-softhsm and no PKCS#11 module
configured, a SoftHSM2 token is created under <state-dir>/softhsm for local development.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import Engine

from kit.clock import Clock, SystemClock
from kit.config import load_settings
from kit.db import make_engine
from kit.errors import DomainError
from kit.migrations import upgrade_to_head
from services.signing.crypto.bootstrap import bootstrap_pki
from services.signing.crypto.keystore import (
    ENV_MODULE,
    Keystore,
    describe_keystore,
    keystore_from_environment,
)
from services.signing.crypto.pki import DEFAULT_CRL_BASE_URL, Pki
from services.signing.crypto.softhsm import init_softhsm_token
from services.signing.store import metadata

DEV_TOKEN_LABEL = "citydata-dev"
DEV_USER_PIN = "citydata-dev-pin"
DEV_SO_PIN = "citydata-dev-so-pin"


def dev_environment(state_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment plus a local SoftHSM2 token when no PKCS#11 module is configured."""
    env = dict(environ)
    if not env.get(ENV_MODULE):
        token = init_softhsm_token(state_dir / "softhsm", DEV_TOKEN_LABEL, DEV_USER_PIN, DEV_SO_PIN)
        env.update(token.environment())
        os.environ["SOFTHSM2_CONF"] = env["SOFTHSM2_CONF"]  # read by the module at load time
    return env


def open_pki(
    state_dir: Path, environ: Mapping[str, str], clock: Clock, crl_base_url: str, database: Engine
) -> tuple[Pki, Keystore]:
    keystore = keystore_from_environment(environ, state_dir / "keys")
    return Pki(keystore, state_dir, clock, crl_base_url=crl_base_url, database=database), keystore


def open_database(url: str) -> Engine:
    engine = make_engine(url)
    upgrade_to_head(engine, "signing", metadata)
    return engine


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.signing.cli.bootstrap", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument(
        "--agencies", default="", help="comma-separated codes (default: every signing agency of the directory)"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="the signing database (default: SIGNING_DATABASE_URL, else SQLite var/signing.db)",
    )
    parser.add_argument("--crl-base-url", default=os.environ.get("CITYDATA_CRL_BASE_URL", DEFAULT_CRL_BASE_URL))
    parser.add_argument(
        "--dev-softhsm",
        action="store_true",
        help="create/use a SoftHSM2 token under <state-dir>/softhsm if no PKCS#11 module is set",
    )
    args = parser.parse_args(argv)
    agencies = [code.strip() for code in args.agencies.split(",") if code.strip()] or None
    environ: Mapping[str, str] = os.environ
    try:
        if args.dev_softhsm:
            environ = dev_environment(args.state_dir, environ)
        database = open_database(args.database_url or load_settings("signing").database_url)
        pki, keystore = open_pki(args.state_dir, environ, SystemClock(), args.crl_base_url, database)
        print(describe_keystore(keystore))
        result = bootstrap_pki(pki, agencies)
    except DomainError as exc:
        print(f"bootstrap failed: {exc.message}", file=sys.stderr)
        return 2
    print(result.summary())
    print(f"trust anchor: {args.state_dir / 'ca' / 'root.pem'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
