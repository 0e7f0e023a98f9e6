"""Scale-out proof for the gateway: two gateway replicas as real processes (`python -m
services.gateway`, own gRPC/HTTP/metrics ports, ONE gateway database, the same consumer group
`gateway-readmodel`) build the read model from the 6 partitions of each of the registry, dossier and
signing topics, in front of the two dossier replicas of conftest (private Kafka + PostgreSQL).

60 dossiers of two agencies are imported, half through each dossier replica: 20 resolved on time,
20 resolved late (each late one also gets its overdue event and an apology letter), 20 still open.

* none lost, no duplicate effect: the KPIs equal what was imported; every dossier is one row of
  rm_dossiers with exactly the letters it got; the group's processed ids are exactly the ce_ids on
  the topics; the dossier topic's applied count equals its number of events (an event applied
  twice would count twice);
* the work split: each replica reports by itself the events IT handled (the consumer runner's
  CONSUMER spans, exported over OTLP to a receiver in the test under the replica's own service
  name); both handled some, no event was handled by both, together they handled every event; the
  group coordinator shows two members holding 3 partitions each;
* both replicas answer the same KPIs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
import pytest
from citydata.v1 import dossier_pb2 as pb
from citydata.v1 import gateway_pb2
from citydata.v1.dossier_pb2_grpc import DossierServiceStub
from citydata.v1.gateway_pb2_grpc import GatewayServiceStub
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import create_engine, text

from chaos.checks import EventRecord, read_events
from chaos.infra import PrivateInfra
from chaos.load import procedures_for, timestamp_of
from chaos.services import ServiceProcess, gateway_process
from services.dossier.store.events import TOPIC as DOSSIER_TOPIC
from services.gateway.readmodel.model import DEFAULT_GROUP
from services.gateway.readmodel.projection import TOPICS
from tests.scaleout.kafka_groups import wait_for_split
from tests.scaleout.span_sink import ConsumerSpanSink

pytestmark = pytest.mark.slow

T = TypeVar("T")
AGENCIES = ["STP", "SXD"]
PER_KIND = 20  # on time, late, open
DASHBOARD_TOKEN = f"scaleout-dashboard-{uuid.uuid4().hex}"  # the policy's read-only dashboard agency (TTDH)
COUNTERS = (
    "received",
    "resolved",
    "resolved_on_time",
    "resolved_late",
    "overdue",
    "currently_overdue",
    "apology_required",
    "apology_issued",
)
EXPECTED_KPIS = {
    "received": 3 * PER_KIND,
    "resolved": 2 * PER_KIND,
    "resolved_on_time": PER_KIND,
    "resolved_late": PER_KIND,
    "overdue": PER_KIND,  # each late resolution missed its deadline first
    "currently_overdue": 0,  # …and left the overdue list when resolved
    "apology_required": PER_KIND,
    "apology_issued": PER_KIND,  # the dossier replicas' letters
}


@pytest.fixture(scope="module")
def span_sink() -> Iterator[ConsumerSpanSink]:
    sink = ConsumerSpanSink(DEFAULT_GROUP)
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def gateways(
    infra: PrivateInfra,
    replicas: list[ServiceProcess],
    span_sink: ConsumerSpanSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[ServiceProcess]]:
    work = tmp_path_factory.mktemp("scaleout-gateway")
    tokens = work / "dev-tokens.toml"
    tokens.write_text(f'[tokens]\n"{DASHBOARD_TOKEN}" = "TTDH"\n', encoding="utf-8")
    processes = [
        gateway_process(infra, work, dossier, tokens, replica=number) for number, dossier in enumerate(replicas, 1)
    ]
    for process in processes:
        process.env |= span_sink.environment(process.name)
    try:
        for process in processes:  # migrations take an advisory lock: both may start at once
            process.start(wait=False)
        for process in processes:
            process.wait_serving()
        yield processes
    finally:
        for process in processes:
            process.stop()


# ---------------------------------------------------------------------------------- writing


def imported_dossier(procedure: str, kind: str, now: datetime) -> pb.ImportedDossier:
    """`on_time`: resolved 2 hours after receipt; `late`: 20 days after; `open`: received an hour ago."""
    received = now - (timedelta(hours=1) if kind == "open" else timedelta(days=30))

    def at(offset: timedelta) -> Timestamp:
        return timestamp_of(received + offset)

    steps = []
    if kind != "open":
        resolved_after = timedelta(hours=2) if kind == "on_time" else timedelta(days=20)
        steps = [
            pb.ImportedDossierStep(action="ACCEPT", occurred_at=at(timedelta(hours=1))),
            pb.ImportedDossierStep(action="RESOLVE", occurred_at=at(resolved_after)),
        ]
    return pb.ImportedDossier(
        import_key=f"scaleout-gw-{kind}-{uuid.uuid4().hex}",
        procedure_code=procedure,
        applicant_registry_id=f"cit-{uuid.uuid4().hex[:8]}",
        applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
        channel=pb.DOSSIER_CHANNEL_COUNTER,
        received_at=at(timedelta()),
        steps=steps,
        state=pb.DOSSIER_STATE_RECEIVED if kind == "open" else pb.DOSSIER_STATE_RESOLVED,
    )


def import_through(replica: ServiceProcess, rows: list[pb.ImportedDossier]) -> int:
    with grpc.insecure_channel(replica.address) as channel:
        response = DossierServiceStub(channel).ImportDossiers(iter([pb.ImportDossiersRequest(rows=rows)]), timeout=60)
    assert not response.failures, list(response.failures)[:3]
    return int(response.rows_imported)


# ---------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ReadModelView:
    """What one gateway replica answers: its KPI totals and its lag on the topics."""

    kpis: dict[str, int]
    lag: int


def view_through(gateway: ServiceProcess) -> ReadModelView:
    metadata = (("authorization", f"Bearer {DASHBOARD_TOKEN}"),)
    with grpc.insecure_channel(gateway.address) as channel:
        stub = GatewayServiceStub(channel)
        total = stub.GetDossierKpis(gateway_pb2.GetDossierKpisRequest(), metadata=metadata, timeout=10).total
        status = stub.GetReadModelStatus(gateway_pb2.GetReadModelStatusRequest(), metadata=metadata, timeout=10)
    return ReadModelView({name: int(getattr(total, name)) for name in COUNTERS}, sum(t.lag for t in status.topics))


def wait_until(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached in {timeout:.0f}s (last: {last!r})")


def settled(gateway: ServiceProcess) -> ReadModelView | None:
    view = view_through(gateway)
    return view if view.kpis == EXPECTED_KPIS and view.lag == 0 else None


@dataclass(frozen=True)
class GatewayTables:
    processed_ids: list[str]  # of the read-model group, one per row
    dossier_letters: dict[str, int]  # rm_dossiers: dossier id → apology letters
    applied: dict[str, int]  # rm_topic_positions: topic → events applied


def gateway_tables(infra: PrivateInfra) -> GatewayTables:
    engine = create_engine(infra.database_url("gateway"))
    try:
        with engine.connect() as conn:
            processed = conn.execute(
                text("SELECT event_id FROM processed_events WHERE consumer = :group"), {"group": DEFAULT_GROUP}
            ).scalars()
            letters = conn.execute(text("SELECT dossier_id, apology_letters FROM rm_dossiers")).all()
            applied = conn.execute(
                text(
                    "SELECT topic, SUM(events_applied) FROM rm_topic_positions GROUP BY topic"
                )  # one row per partition
            ).all()
            return GatewayTables(
                list(processed), {r[0]: int(r[1]) for r in letters}, {r[0]: int(r[1]) for r in applied}
            )
    finally:
        engine.dispose()


def events_by_type(events: list[EventRecord], ce_type: str) -> set[str]:
    """Keys (dossier ids) of the events of one type."""
    return {event.key for event in events if event.ce_type == ce_type}


# ---------------------------------------------------------------------------------- the proof


@pytest.mark.timeout(240)
def test_two_gateway_replicas_share_the_read_model_without_duplicates_or_losses(
    infra: PrivateInfra,
    replicas: list[ServiceProcess],
    gateways: list[ServiceProcess],
    span_sink: ConsumerSpanSink,
) -> None:
    started = time.monotonic()
    assignment = wait_for_split(infra.bootstrap, DEFAULT_GROUP, DOSSIER_TOPIC)
    procedures = procedures_for(AGENCIES)
    now = datetime.now(UTC)
    rows = [
        imported_dossier(procedures[index % len(procedures)], kind, now)
        for kind in ("on_time", "late", "open")
        for index in range(PER_KIND)
    ]
    imported = [import_through(replicas[0], rows[0::2]), import_through(replicas[1], rows[1::2])]

    wait_until(lambda: settled(gateways[0]), 90, "the imported KPIs through gateway 1 with no lag")
    time.sleep(2)  # a duplicate effect would land a moment after the original
    views = [view_through(gateway) for gateway in gateways]
    events = read_events(infra.bootstrap, tuple(TOPICS))
    event_ids = {event.ce_id for event in events}
    wait_until(
        lambda: event_ids <= span_sink.handled_by(gateways[0].name) | span_sink.handled_by(gateways[1].name),
        15,
        "every event in the replicas' consumer spans",
    )
    handled = [span_sink.handled_by(gateway.name) for gateway in gateways]
    tables = gateway_tables(infra)
    # an imported dossier is one dossier.imported, and a late one also its dossier.apology_required
    late = events_by_type(events, "dossier.apology_required")
    print(
        f"\ngateway scale-out: {len(event_ids)} events; dossier-topic partitions per member "
        f"{sorted(assignment.values())}; handled by gateway 1: {len(handled[0])}, by gateway 2: "
        f"{len(handled[1])}, by both: {len(handled[0] & handled[1])}; {time.monotonic() - started:.1f}s"
    )

    assert imported == [3 * PER_KIND // 2, 3 * PER_KIND // 2]
    assert [view.kpis for view in views] == [EXPECTED_KPIS, EXPECTED_KPIS]
    assert [view.lag for view in views] == [0, 0]
    # none lost, none twice
    received = events_by_type(events, "dossier.imported")
    assert len(received) == 3 * PER_KIND and set(tables.dossier_letters) == received
    assert len(late) == PER_KIND
    assert {d: n for d, n in tables.dossier_letters.items() if n} == dict.fromkeys(late, 1)
    assert len(tables.processed_ids) == len(set(tables.processed_ids))
    assert set(tables.processed_ids) == event_ids
    dossier_events = {event.ce_id for event in events if event.topic == DOSSIER_TOPIC}
    assert tables.applied[DOSSIER_TOPIC] == len(dossier_events)
    # the work split
    assert sorted(len(partitions) for partitions in assignment.values()) == [3, 3]
    assert handled[0] and handled[1], "one gateway replica handled every event: the work was not shared"
    assert not handled[0] & handled[1], "an event was handled by both replicas"
    assert handled[0] | handled[1] == event_ids
