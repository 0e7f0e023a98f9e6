"""National Public Service Portal sync.

    python -m services.analytics.portal run         # consume citydata.dossier.v1 and push to the portal
    python -m services.analytics.portal reconcile [--limit 50] [--strict]
    python -m services.analytics.portal requeue [--dossier ID ...]

Settings: ANALYTICS_DATABASE_URL (or DATABASE_URL; default sqlite var/analytics.db),
KAFKA_BOOTSTRAP_SERVERS, PORTAL_URL, PORTAL_TOKEN, PORTAL_TIMEOUT_SECONDS, PORTAL_STATUS_MAP.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from kit.config import load_settings
from kit.db import make_engine
from kit.logs import setup_logging
from kit.migrations import upgrade_to_head
from kit.subscribe import Subscription
from services.analytics import store
from services.analytics.consumers import DOSSIER_TOPIC, PORTAL_SYNC_CONSUMER, PortalSyncHandler
from services.analytics.domain.portal import PORTAL_STATUS_NAMES
from services.analytics.portal.client import PortalClient, PortalConfig, load_status_table
from services.analytics.portal.pusher import PortalPusher

SERVICE = "analytics"


def analytics_engine() -> Engine:
    engine = make_engine(load_settings(SERVICE).database_url)
    upgrade_to_head(engine, SERVICE, store.metadata)
    return engine


def portal_subscription(engine: Engine, config: PortalConfig, bootstrap_servers: str) -> Subscription:
    handler = PortalSyncHandler(load_status_table(config.status_map))
    return Subscription(
        PORTAL_SYNC_CONSUMER, [DOSSIER_TOPIC], engine, handler, bootstrap_servers=bootstrap_servers, tables=store.tables
    )


def run() -> int:
    setup_logging(SERVICE)
    config = PortalConfig.from_env()
    engine = analytics_engine()
    subscription = portal_subscription(engine, config, load_settings(SERVICE).kafka_bootstrap_servers)
    pusher = PortalPusher(sessionmaker(engine), PortalClient(config).post)
    stop = threading.Event()

    def on_signal(_number: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"portal sync: {DOSSIER_TOPIC} → {config.safe_url}", file=sys.stderr)
    worker = threading.Thread(target=pusher.run, args=(stop,), name="portal-pusher")
    worker.start()
    subscription.run(stop)
    worker.join()
    return 0


def reconcile(limit: int, strict: bool) -> int:
    """What the portal was told vs what Kafka said, per dossier."""
    engine = analytics_engine()
    with sessionmaker(engine)() as session:
        totals = store.sync_totals(session)
        behind = store.out_of_sync(session, limit)
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
        count = store.requeue_refused(session, dossier_ids or None)
    print(f"{count} refused push(es) queued again")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.analytics.portal", description=__doc__.split("\n")[0])
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
