"""An imported dossier (ONE `dossier.imported` plus its `dossier.apology_required`) gives the gateway's
read model the KPIs the same history gives as per-step events, through real Kafka and PostgreSQL
and the gateway's own consumer runner and projection."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from citydata.v1 import dossier_pb2 as pb
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kit.consumer import ConsumerRunner
from kit.db import make_engine
from kit.deadlines.calendar import LOCAL_TIME
from kit.kafka import make_consumer, make_producer
from kit.migrations import upgrade_to_head
from services.gateway import store
from services.gateway.domain.kpi import Dimension, KpiQuery, Period
from services.gateway.readmodel.projection import Projection
from services.gateway.readmodel.queries import ReadModelQueries
from tests.support.dossier_histories import History, Step, encoded

D0 = datetime(2025, 6, 2, 8, 0, tzinfo=LOCAL_TIME)
DUE = D0 + timedelta(days=3, hours=9)
DAY = timedelta(days=1)
RECEIVED, IN_PROGRESS = pb.DOSSIER_STATE_RECEIVED, pb.DOSSIER_STATE_IN_PROGRESS
SUPPLEMENT, RESOLVED = pb.DOSSIER_STATE_SUPPLEMENT_REQUESTED, pb.DOSSIER_STATE_RESOLVED

# Four histories of one agency: on time; late after a missed deadline; missed, supplement
# requested, resubmitted, missed again and resolved late; still overdue.
START = [Step("SUBMIT", D0, RECEIVED, DUE), Step("ACCEPT", D0 + timedelta(hours=1), IN_PROGRESS, DUE)]
MISSED = Step("OVERDUE", DUE, IN_PROGRESS, DUE)
SECOND_DUE = DUE + 7 * DAY
HISTORIES = [
    (pb.DOSSIER_CHANNEL_ONLINE, [*START, Step("RESOLVE", D0 + DAY, RESOLVED, DUE, on_time=True)]),
    (pb.DOSSIER_CHANNEL_COUNTER, [*START, MISSED, Step("RESOLVE", DUE + DAY, RESOLVED, DUE)]),
    (
        pb.DOSSIER_CHANNEL_ONLINE,
        [
            *START,
            MISSED,
            Step("REQUEST_SUPPLEMENT", DUE + DAY, SUPPLEMENT, None),
            Step("RESUBMIT", DUE + 2 * DAY, IN_PROGRESS, SECOND_DUE),
            Step("OVERDUE", SECOND_DUE, IN_PROGRESS, SECOND_DUE),
            Step("RESOLVE", SECOND_DUE + DAY, RESOLVED, SECOND_DUE),
        ],
    ),
    (pb.DOSSIER_CHANNEL_POST, [*START, MISSED]),
]


@pytest.fixture
def readmodel(pg_database: str) -> Iterator[Engine]:
    engine = make_engine(pg_database)
    upgrade_to_head(engine, "gateway", store.metadata)
    yield engine
    engine.dispose()


def publish(kafka: str, topic: str, told: list[tuple[str, str, object, datetime]]) -> None:
    producer = make_producer(kafka)
    try:
        for event_type, key, payload, at in told:
            message = encoded(event_type, key, payload, at)  # type: ignore[arg-type]
            producer.send(topic, key=message.key, value=message.value, headers=list(message.headers.items()))
        producer.flush(timeout=30)
    finally:
        producer.close()


def consume(kafka: str, topic: str, engine: Engine, expected: int) -> ConsumerRunner:
    group = f"gateway-readmodel-test-{uuid.uuid4().hex[:8]}"
    consumer, dlq = make_consumer(kafka, group, [topic]), make_producer(kafka)
    runner = ConsumerRunner(group, consumer, dlq, sessionmaker(engine), store.tables, Projection(store.readmodel))
    deadline = time.monotonic() + 60
    try:
        while runner.handled + runner.dead_lettered < expected and time.monotonic() < deadline:
            runner.poll_once(timeout_ms=500)
    finally:
        consumer.close(autocommit=False)
        dlq.close()
    return runner


def kpis_of(engine: Engine, procedure: str) -> dict[str, dict[str, int]]:
    """The procedure's KPIs per local day, as GetDossierKpis computes them."""
    query = KpiQuery(procedure_code=procedure, group_by=(Dimension.PERIOD,), period=Period.DAY)
    with Session(engine) as session:
        groups = ReadModelQueries(store.readmodel).kpis(session, query)
    return {group.period: vars(group.counts) for group in groups}


def dossier_facts(engine: Engine, ids: list[str]) -> list[tuple[object, ...]]:
    d = store.readmodel.dossiers
    columns = [c for c in d.columns if c.name not in ("dossier_id", "number", "procedure_code")]
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(*columns).where(d.c.dossier_id.in_(ids)))]


def test_an_imported_dossier_gives_the_kpis_of_its_history_sent_step_by_step(
    readmodel: Engine, kafka_bootstrap: str, topic: str
) -> None:
    live_procedure, imported_procedure = "9.100001", "9.100002"
    live = [History("UBND-Q5", live_procedure, channel, D0, steps) for channel, steps in HISTORIES]
    imported = [History("UBND-Q5", imported_procedure, channel, D0, steps) for channel, steps in HISTORIES]
    told = [(t, h.dossier_id, p, at) for h in live for t, p, at in h.per_step()]
    told += [(t, h.dossier_id, p, at) for h in imported for t, p, at in h.imported()]
    publish(kafka_bootstrap, topic, told)

    runner = consume(kafka_bootstrap, topic, readmodel, len(told))

    assert (runner.handled, runner.dead_lettered) == (len(told), 0)
    by_step, by_import = kpis_of(readmodel, live_procedure), kpis_of(readmodel, imported_procedure)
    assert by_import == by_step
    totals = {name: sum(day[name] for day in by_import.values()) for name in ("received", "resolved", "overdue")}
    assert totals == {"received": 4, "resolved": 3, "overdue": 4}
    assert sum(day["currently_overdue"] for day in by_import.values()) == 1
    assert sum(day["resolved_late"] for day in by_import.values()) == 2
    assert sum(day["apology_required"] for day in by_import.values()) == 4
    assert sorted(dossier_facts(readmodel, [h.dossier_id for h in imported]), key=repr) == sorted(
        dossier_facts(readmodel, [h.dossier_id for h in live]), key=repr
    )
