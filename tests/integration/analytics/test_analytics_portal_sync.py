"""The national-portal sync against real Kafka and PostgreSQL and a local stand-in of the portal:
per-dossier order, status codes, retries with back-off, dead letters, reconciliation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from kit.db import make_engine
from kit.kafka import make_producer
from kit.migrations import upgrade_to_head
from kit.subscribe import Subscription
from services.analytics import store
from services.analytics.cli.portal import main as portal_cli
from services.analytics.clients.portal import SHIPPED_STATUS_MAP, PortalClient, PortalConfig, load_status_table
from services.analytics.consumers.portal_pusher import PortalPusher
from services.analytics.consumers.portal_sync import PortalSyncHandler
from tests.integration.analytics.analytics_events import life_of, send
from tests.integration.analytics.portal_standin import Call, PortalStandIn

TOKEN = "s3cret-portal-token"


@dataclass
class Sync:
    engine: Engine
    portal: PortalStandIn
    pusher: PortalPusher
    numbers: dict[str, str]  # dossier id → MaHoSo


@pytest.fixture
def portal() -> Iterator[PortalStandIn]:
    with PortalStandIn() as standin:
        yield standin


def _start(pg_database: str, kafka_bootstrap: str, topic: str, portal: PortalStandIn, timeout: float = 5.0) -> Sync:
    """Three dossiers' lives on the topic, consumed into the queue of pushes."""
    engine = make_engine(pg_database)
    upgrade_to_head(engine, "analytics", store.metadata)
    numbers = {f"dossier-{i:04d}": f"000.00.SXD.H29-220301-{i:04d}" for i in range(1, 4)}
    producer = make_producer(kafka_bootstrap)
    for dossier_id, number in numbers.items():
        for event_type, payload in life_of(dossier_id, number):
            send(producer, topic, event_type, payload, dossier_id)
    producer.close()
    handler = PortalSyncHandler(load_status_table(SHIPPED_STATUS_MAP))
    subscription = Subscription(
        f"portal-{uuid.uuid4().hex[:6]}",
        [topic],
        engine,
        handler,
        bootstrap_servers=kafka_bootstrap,
        tables=store.tables,
    )
    subscription.run_until_idle(idle_seconds=2, max_seconds=30)
    subscription.close()
    client = PortalClient(PortalConfig(portal.url, TOKEN, timeout_seconds=timeout))
    pusher = PortalPusher(sessionmaker(engine), client.post, first_backoff_seconds=0.05, max_backoff_seconds=0.2)
    return Sync(engine, portal, pusher, numbers)


def _drain(sync: Sync, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync.pusher.push_once()
        with sync.engine.connect() as conn:
            if conn.execute(select(store.pushes.c.seq).where(store.pushes.c.state == store.PENDING)).first() is None:
                return
        time.sleep(0.05)
    raise AssertionError("pushes still pending")


def _statuses(calls: list[Call], number: str) -> list[tuple[str, str]]:
    return [(c.service, c.status) for c in calls if c.number == number]


LIFE = [("DongBoHoSoMC", "2"), ("CapNhatTienDoHoSoMC", "4"), ("DongBoHoSoMC", "9"), ("DongBoHoSoMC", "10")]


def test_every_dossier_reaches_the_portal_in_kafka_order_through_an_outage(
    pg_database: str, kafka_bootstrap: str, topic: str, portal: PortalStandIn
) -> None:
    portal.fail_next(3, status=503)
    sync = _start(pg_database, kafka_bootstrap, topic, portal)
    _drain(sync)

    assert [c.answered for c in portal.calls[:3]] == [503, 503, 503]
    accepted = portal.accepted()
    for number in sync.numbers.values():
        assert _statuses(accepted, number) == LIFE
    first = next(c for c in accepted if c.number == "000.00.SXD.H29-220301-0001")
    record = first.body["data"][0]
    assert (record["NgayTiepNhan"], record["NgayHenTra"], record["KenhThucHien"]) == (
        "20220301090000",
        "20220321090000",
        "2",
    )
    assert first.body["isUpdating"] == "false" and first.authorization == f"Bearer {TOKEN}"
    resolved = next(c for c in accepted if c.status == "9").body["data"][0]
    assert resolved["NgayKetThucXuLy"] == "20220301190000"


def test_a_refused_dossier_is_dead_lettered_with_the_answer_and_the_others_go_on(
    pg_database: str,
    kafka_bootstrap: str,
    topic: str,
    portal: PortalStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused = "000.00.SXD.H29-220301-0002"
    portal.refuse(refused)
    sync = _start(pg_database, kafka_bootstrap, topic, portal)
    _drain(sync)

    assert _statuses(portal.accepted(), refused) == []
    assert [c.answered for c in portal.calls if c.number == refused] == [400, 400, 400, 400]  # no retries
    for number in set(sync.numbers.values()) - {refused}:
        assert _statuses(portal.accepted(), number) == LIFE

    monkeypatch.setenv("ANALYTICS_DATABASE_URL", pg_database)
    assert portal_cli(["reconcile", "--strict"]) == 1
    report = capsys.readouterr().out
    assert refused in report and "MaTTHC không tồn tại" in report
    assert "000.00.SXD.H29-220301-0001" not in report
    assert TOKEN not in report

    portal._refused.clear()  # the portal's catalogue was fixed
    assert portal_cli(["requeue", "--dossier", "dossier-0002"]) == 0
    _drain(sync)
    assert _statuses(portal.accepted(), refused) == LIFE
    assert portal_cli(["reconcile", "--strict"]) == 0
    assert "out_of_sync                0" in capsys.readouterr().out


def test_a_portal_slower_than_the_timeout_is_asked_again_and_order_holds(
    pg_database: str, kafka_bootstrap: str, topic: str, portal: PortalStandIn
) -> None:
    portal.slow_next(1, seconds=1.5)
    sync = _start(pg_database, kafka_bootstrap, topic, portal, timeout=0.5)
    _drain(sync)

    first_number = portal.calls[0].number
    # the portal got the first call twice (we never heard its answer): at-least-once, same content
    assert portal.calls[0].body == portal.calls[1].body
    for number in sync.numbers.values():
        statuses = _statuses(portal.accepted(), number)
        deduplicated = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
        assert deduplicated == LIFE, number
    assert sync.pusher.failures == 0 and first_number in sync.numbers.values()
