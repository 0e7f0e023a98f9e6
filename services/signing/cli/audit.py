"""Check the signing audit log's hash chain from a shell.

    python -m services.signing.cli.audit verify [--database-url URL]

Exit status 0 when every row is present and unchanged, 1 when a row was altered or is missing
(the first bad row is named), 2 when the database cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from kit.config import load_settings
from kit.db import make_engine
from services.signing.store.audit import verify_audit_log


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.signing.cli.audit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="recompute the hash chain and report the first bad row")
    verify.add_argument("--database-url", default=None, help="default: SIGNING_DATABASE_URL / DATABASE_URL")
    args = parser.parse_args(argv)
    engine = make_engine(args.database_url or load_settings("signing").database_url)
    try:
        result = verify_audit_log(engine)
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


if __name__ == "__main__":
    raise SystemExit(main())
