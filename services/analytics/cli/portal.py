"""National Public Service Portal sync.

    python -m services.analytics.cli.portal run         # the sync itself, as `python -m services.analytics`
    python -m services.analytics.cli.portal reconcile [--limit 50] [--strict]
    python -m services.analytics.cli.portal requeue [--dossier ID ...]

Settings: ANALYTICS_DATABASE_URL (or DATABASE_URL; default sqlite var/analytics.db),
KAFKA_BOOTSTRAP_SERVERS, PORTAL_URL, PORTAL_TOKEN, PORTAL_TIMEOUT_SECONDS, PORTAL_STATUS_MAP.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.orm import sessionmaker

from services.analytics.app import analytics_engine, run
from services.analytics.domain.portal import PORTAL_STATUS_NAMES
from services.analytics.store import portal_repository


def reconcile(limit: int, strict: bool) -> int:
    """What the portal was told vs what Kafka said, per dossier."""
    engine = analytics_engine()
    with sessionmaker(engine)() as session:
        totals = portal_repository.sync_totals(session)
        behind = portal_repository.out_of_sync(session, limit)
    print("portal reconciliation")
    for name, value in totals.items():
        print(f"  {name:<16}{value:>12,}")
    if behind:
        print(f"\nout of sync (oldest first, at most {limit}):")
        print(f"  {'dossier number':<34}{'seen':>6}{'sent':>6}{'pending':>9}{'refused':>9}  last error")
        for row in behind:
            sent = "-" if row.last_sent_status is None else str(row.last_sent_status)
            error = (row.last_error or "").replace("\n", " ")[:80]
            print(
                f"  {row.number:<34}{row.last_seen_status:>6}{sent:>6}{row.pending_pushes:>9}"
                f"{row.refused_pushes:>9}  {error}"
            )
        print("\nstatus codes: " + ", ".join(f"{code} {name}" for code, name in PORTAL_STATUS_NAMES.items()))
    return 1 if strict and totals["out_of_sync"] else 0


def requeue(dossier_ids: list[str]) -> int:
    engine = analytics_engine()
    with sessionmaker(engine)() as session, session.begin():
        count = portal_repository.requeue_refused(session, dossier_ids or None)
    print(f"{count} refused push(es) queued again")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.analytics.cli.portal", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="consume dossier events and push them to the portal")
    rec = sub.add_parser("reconcile", help="report what is in sync with the portal and what is not")
    rec.add_argument("--limit", type=int, default=50)
    rec.add_argument("--strict", action="store_true", help="exit 1 when anything is out of sync")
    req = sub.add_parser("requeue", help="queue refused pushes again")
    req.add_argument("--dossier", action="append", default=[], help="only this dossier id (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run()
    if args.command == "reconcile":
        return reconcile(args.limit, args.strict)
    return requeue(args.dossier)


if __name__ == "__main__":
    sys.exit(main())
