"""Checks the gateway's audit log hash chain.

    python -m services.gateway.cli.audit verify [--database-url URL]

Prints the result; exit status 0 when intact, 1 when a row was altered or is missing.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.orm import sessionmaker

from kit.config import load_settings
from kit.db import make_engine
from services.gateway.api.service import verify_audit_log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CityData gateway audit log")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="recompute the hash chain; report the first altered or missing row")
    verify.add_argument("--database-url", default=None, help="default: the gateway's DATABASE_URL")
    args = parser.parse_args(argv)
    engine = make_engine(args.database_url or load_settings("gateway").database_url)
    try:
        with sessionmaker(engine)() as session:
            result = verify_audit_log(session)
    finally:
        engine.dispose()
    if result.intact:
        print(f"audit log intact: {result.rows_checked} rows checked")
        return 0
    print(
        f"audit log BROKEN: {result.problem} (first bad sequence {result.first_bad_sequence}; "
        f"{result.rows_checked} rows before it are intact)"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
