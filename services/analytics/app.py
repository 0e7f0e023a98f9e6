"""Assembles the analytics service, the National Public Service Portal sync (`python -m services.analytics`):
the Kafka handler that queues a portal call per dossier event (consumer group `analytics-portal-sync`)
and the pusher that makes those calls in order. Used by `__main__` and `cli/portal.py`.

Settings: ANALYTICS_DATABASE_URL (or DATABASE_URL; default sqlite var/analytics.db),
KAFKA_BOOTSTRAP_SERVERS, PORTAL_URL, PORTAL_TOKEN, PORTAL_TIMEOUT_SECONDS, PORTAL_STATUS_MAP.
"""

from __future__ import annotations

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
from services.analytics.clients.portal import PortalClient, PortalConfig, load_status_table
from services.analytics.consumers.portal_pusher import PortalPusher
from services.analytics.consumers.portal_sync import DOSSIER_TOPIC, PORTAL_SYNC_CONSUMER, PortalSyncHandler

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
