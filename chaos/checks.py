"""What must hold after the faults, checked against each service's own database and the broker:

* every acknowledged write is in the database (nothing lost);
* every committed change has its event on Kafka (outbox drained, each outbox ce_id on its topic,
  each citizen and dossier has events keyed by its id);
* no consumer effect happened twice (one letter row and one `dossier.apology_issued` ce_id per
  dossier, one `dossier.overdue` ce_id per missed deadline, one `citizen.registered` per citizen);
* every overdue dossier has its apology letter (coverage 100 %, as GetApologyCoverage reports it).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import grpc
from citydata.v1 import dossier_pb2 as dossier_pb
from citydata.v1.dossier_pb2_grpc import DossierServiceStub
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import create_engine, text

from chaos.infra import PrivateInfra
from chaos.load import Ledger

TOPICS = ("citydata.registry.v1", "citydata.dossier.v1", "citydata.signing.v1")
OUTBOX_SERVICES = ("registry", "dossier", "signing")


@dataclass(frozen=True)
class EventRecord:
    topic: str
    partition: int
    key: str
    ce_id: str
    ce_type: str


def read_events(bootstrap: str, topics: tuple[str, ...] = TOPICS, timeout: float = 60.0) -> list[EventRecord]:
    """Every record of `topics` from the beginning up to their current end."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[EventRecord] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError("the topics were not read to their end in time")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(_event(record) for record in batch)
        return records
    finally:
        consumer.close()


def _event(record: Any) -> EventRecord:
    headers = {name: (value or b"").decode() for name, value in record.headers or []}
    key = record.key.decode() if record.key is not None else ""
    return EventRecord(record.topic, record.partition, key, headers.get("ce_id", ""), headers.get("ce_type", ""))


def _rows(url: str, query: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query)).all())
    finally:
        engine.dispose()


def outbox_pending(infra: PrivateInfra) -> dict[str, int]:
    return {
        service: int(_rows(infra.database_url(service), "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0])
        for service in OUTBOX_SERVICES
    }


def overdue_and_letters(infra: PrivateInfra) -> tuple[int, int]:
    url = infra.database_url("dossier")
    overdue = int(_rows(url, "SELECT count(*) FROM dossiers WHERE missed_deadlines > 0")[0][0])
    letters = int(_rows(url, "SELECT count(*) FROM apology_letters")[0][0])
    return overdue, letters


def wait_settled(infra: PrivateInfra, expected_overdue: int, timeout: float) -> float:
    """Seconds until the outboxes drained and every overdue dossier has its letter."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            pending = outbox_pending(infra)
            overdue, letters = overdue_and_letters(infra)
        except Exception:  # the database may still be recovering
            time.sleep(1)
            continue
        if not any(pending.values()) and overdue >= expected_overdue and letters >= overdue:
            return time.monotonic() - started
        time.sleep(1)
    return -1.0


@dataclass
class Verdict:
    lost: dict[str, list[str]] = field(default_factory=dict)
    outbox_pending: dict[str, int] = field(default_factory=dict)
    outbox_rows_not_on_kafka: dict[str, int] = field(default_factory=dict)
    changes_without_event: dict[str, int] = field(default_factory=dict)
    duplicated_effects: dict[str, int] = field(default_factory=dict)
    overdue_dossiers: int = 0
    letters: int = 0
    overdue_without_letter: int = 0
    coverage_percent: float = 0.0
    coverage_reported: dict[str, float] = field(default_factory=dict)
    redelivered_records: int = 0  # same ce_id more than once on a topic: at-least-once, harmless

    @property
    def lost_count(self) -> int:
        return sum(len(items) for items in self.lost.values())

    @property
    def duplicate_count(self) -> int:
        return sum(self.duplicated_effects.values())

    @property
    def ok(self) -> bool:
        return (
            self.lost_count == 0
            and not any(self.outbox_pending.values())
            and not any(self.outbox_rows_not_on_kafka.values())
            and not any(self.changes_without_event.values())
            and self.duplicate_count == 0
            and self.overdue_without_letter == 0
            and self.coverage_percent == 100.0
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "lost": self.lost_count,
            "lost_samples": {kind: items[:5] for kind, items in self.lost.items() if items},
            "duplicated_effects": self.duplicate_count,
            "duplicated_effects_by_kind": self.duplicated_effects,
            "outbox_pending": self.outbox_pending,
            "outbox_rows_not_on_kafka": self.outbox_rows_not_on_kafka,
            "changes_without_event": self.changes_without_event,
            "overdue_dossiers": self.overdue_dossiers,
            "apology_letters": self.letters,
            "overdue_without_letter": self.overdue_without_letter,
            "coverage_percent": self.coverage_percent,
            "coverage_reported_by_service": self.coverage_reported,
            "redelivered_records": self.redelivered_records,
        }


def verify(infra: PrivateInfra, ledger: Ledger, dossier_address: str) -> Verdict:
    verdict = Verdict()
    events = read_events(infra.bootstrap)
    _check_lost(infra, ledger, verdict)
    _check_events(infra, events, verdict)
    _check_effects(infra, events, verdict)
    _check_coverage(dossier_address, verdict)
    return verdict


def _check_lost(infra: PrivateInfra, ledger: Ledger, verdict: Verdict) -> None:
    citizens = {row[0] for row in _rows(infra.database_url("registry"), "SELECT registry_id FROM citizens")}
    dossiers = _rows(infra.database_url("dossier"), "SELECT dossier_id, import_key FROM dossiers")
    dossier_ids = {row[0] for row in dossiers}
    import_keys = {row[1] for row in dossiers if row[1]}
    with ledger.lock:
        verdict.lost = {
            "citizens": sorted(set(ledger.citizens.values()) - citizens),
            "submitted_dossiers": sorted(set(ledger.submitted.values()) - dossier_ids),
            "imported_dossiers": sorted((ledger.imported_overdue | ledger.imported_on_time) - import_keys),
        }


def _check_events(infra: PrivateInfra, events: list[EventRecord], verdict: Verdict) -> None:
    on_kafka = {event.ce_id for event in events}
    keys = {event.key for event in events}
    verdict.redelivered_records = len(events) - len(on_kafka)
    verdict.outbox_pending = outbox_pending(infra)
    for service in OUTBOX_SERVICES:
        ids = {row[0] for row in _rows(infra.database_url(service), "SELECT id FROM outbox")}
        verdict.outbox_rows_not_on_kafka[service] = len(ids - on_kafka)
    citizens = {row[0] for row in _rows(infra.database_url("registry"), "SELECT registry_id FROM citizens")}
    dossiers = {row[0] for row in _rows(infra.database_url("dossier"), "SELECT dossier_id FROM dossiers")}
    verdict.changes_without_event = {"citizens": len(citizens - keys), "dossiers": len(dossiers - keys)}


def distinct_ids_per_key(events: list[EventRecord], ce_type: str) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.ce_type == ce_type:
            ids[event.key].add(event.ce_id)
    return ids


def _check_effects(infra: PrivateInfra, events: list[EventRecord], verdict: Verdict) -> None:
    url = infra.database_url("dossier")
    letter_rows = _rows(url, "SELECT dossier_id, count(*) FROM apology_letters GROUP BY dossier_id")
    missed = dict(_rows(url, "SELECT dossier_id, missed_deadlines FROM dossiers WHERE missed_deadlines > 0"))
    issued = distinct_ids_per_key(events, "dossier.apology_issued")
    overdue = distinct_ids_per_key(events, "dossier.overdue")
    registered = distinct_ids_per_key(events, "citizen.registered")
    verdict.duplicated_effects = {
        "apology_letter_rows": sum(int(count) - 1 for _, count in letter_rows if count > 1),
        "apology_issued_events": sum(len(ids) - 1 for ids in issued.values() if len(ids) > 1),
        "overdue_events": sum(max(0, len(ids) - missed.get(key, 1)) for key, ids in overdue.items()),
        "citizen_registered_events": sum(len(ids) - 1 for ids in registered.values() if len(ids) > 1),
    }
    letters = {row[0] for row in letter_rows}
    verdict.overdue_dossiers = len(missed)
    verdict.letters = len(letters)
    verdict.overdue_without_letter = len(missed.keys() - letters)
    verdict.coverage_percent = round(100.0 * len(missed.keys() & letters) / len(missed), 3) if missed else 100.0


def _check_coverage(dossier_address: str, verdict: Verdict) -> None:
    with grpc.insecure_channel(dossier_address) as channel:
        report = DossierServiceStub(channel).GetApologyCoverage(dossier_pb.GetApologyCoverageRequest(), timeout=30)
    verdict.coverage_reported = {
        "overdue_dossiers": float(report.overdue_dossiers),
        "letters_issued": float(report.letters_issued),
        "coverage_percent": float(report.coverage_percent),
    }
    if report.coverage_percent != 100.0 or report.overdue_dossiers != verdict.overdue_dossiers:
        missing = int(report.overdue_dossiers - report.letters_issued)
        verdict.overdue_without_letter = max(verdict.overdue_without_letter, missing)
        verdict.coverage_percent = min(verdict.coverage_percent, float(report.coverage_percent))
