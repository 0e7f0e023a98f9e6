"""Checks the signing audit log's hash chain: `python -m services.signing.cli.audit verify
[--database-url URL]` (exit 0 intact, 1 a row altered or missing, 2 unreadable; see kit.audit_cli)."""

from __future__ import annotations

from collections.abc import Sequence

from kit.audit_cli import audit_main
from services.signing.store.audit import verify_audit_log


def main(argv: Sequence[str] | None = None) -> int:
    return audit_main("signing", verify_audit_log, argv)


if __name__ == "__main__":
    raise SystemExit(main())
