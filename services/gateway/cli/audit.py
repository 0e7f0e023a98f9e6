"""Checks the gateway's audit log hash chain: `python -m services.gateway.cli.audit verify
[--database-url URL]` (exit 0 intact, 1 a row altered or missing, 2 unreadable; see kit.audit_cli)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from kit.audit_cli import audit_main
from kit.hashchain import Verification
from services.gateway.api.service import verify_audit_log


def verify(engine: Engine) -> Verification:
    with sessionmaker(engine)() as session:
        return verify_audit_log(session)


def main(argv: Sequence[str] | None = None) -> int:
    return audit_main("gateway", verify, argv)


if __name__ == "__main__":
    raise SystemExit(main())
