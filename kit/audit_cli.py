"""The `verify` command every hash-chained audit log has (gateway, signing):

    python -m services.<name>.cli.audit verify [--database-url URL]

Exit status 0 when every row is present and unchanged, 1 when a row was altered or is missing
(the first bad row is named), 2 when the database cannot be read. The service gives how to
verify its log on an engine; the wording and the exit codes are the same for every log.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from kit.config import load_settings
from kit.db import make_engine
from kit.hashchain import Verification


def audit_main(service: str, verify: Callable[[Engine], Verification], argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m services.{service}.cli.audit", description=f"CityData {service} audit log"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser("verify", help="recompute the hash chain and report the first altered or missing row")
    command.add_argument("--database-url", default=None, help=f"default: {service.upper()}_DATABASE_URL / DATABASE_URL")
    args = parser.parse_args(argv)
    engine = make_engine(args.database_url or load_settings(service).database_url)
    try:
        result = verify(engine)
    except SQLAlchemyError as exc:
        print(f"cannot read the audit log: {type(exc).__name__}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if result.intact:
        print(f"audit log intact: {result.rows_checked} rows checked")
        return 0
    print(
        f"audit log NOT intact: {result.problem} (first bad row {result.first_bad_sequence}; "
        f"{result.rows_checked} rows verified before it)"
    )
    return 1
