"""Apology letters against the real signing service (a process on a SoftHSM token), PostgreSQL
and Kafka: one signed letter and one dossier.apology_issued per overdue dossier, whatever is
redelivered; every agency of the directory gets its letters signed; a signing outage delays letters
without losing any; a refusal is parked and shows in the coverage report."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from citydata.v1 import dossier_pb2 as pb
from citydata.v1 import signing_pb2 as signing_pb
from kafka import KafkaProducer
from sqlalchemy import select

from kit.agencies import DEFAULT_FILE
from kit.db import make_engine
from kit.deadlines.calendar import LOCAL_TIME
from services.dossier import store
from tests.integration.dossier.apology_support import (
    SigningProcess,
    TopicRecords,
    coverage,
    dlq_records,
    letters_in,
    signing_process,
    start_apology_dossier_service,
    start_group_at_end,
    unique_group,
)
from tests.integration.dossier.dossier_harness import RunningDossierService, pick_procedure
from tests.support.kafka_tools import header

START = datetime(2025, 3, 3, 9, 0, tzinfo=LOCAL_TIME)
STP_PROCEDURE = pick_procedure(lambda p: p.agency_code == "STP" and p.online_level < 4)
SCT_PROCEDURE = pick_procedure(lambda p: p.agency_code == "SCT" and p.online_level < 4)
WARD_PROCEDURE = pick_procedure(lambda p: p.agency_code == "P-BENNGHE" and p.online_level < 4)
ISSUED, REQUIRED = "dossier.apology_issued", "dossier.apology_required"


@pytest.fixture
def signing_directory(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """The agency directory signing reads: the shipped one, or (param: a code) one where that
    agency does not sign, so its letters are refused for a reason no retry changes."""
    code = getattr(request, "param", None)
    if code is None:
        return None
    shipped = DEFAULT_FILE.read_text(encoding="utf-8")
    entry = f'code = "{code}"\n'
    start = shipped.index(entry)
    end = shipped.index("signs = true", start)
    path = tmp_path / "agencies.toml"
    path.write_text(shipped[:end] + "signs = false" + shipped[end + len("signs = true") :], encoding="utf-8")
    return path


@pytest.fixture
def signing(tmp_path: Path, kafka_bootstrap: str, signing_directory: Path | None) -> Iterator[SigningProcess]:
    process = signing_process(tmp_path, f"sqlite:///{tmp_path / 'signing.db'}", kafka_bootstrap, signing_directory)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def dossier_topic(kafka_bootstrap: str) -> Iterator[TopicRecords]:
    records = TopicRecords(kafka_bootstrap)
    yield records
    records.close()


@pytest.fixture
def group(kafka_bootstrap: str) -> str:
    name = unique_group()
    start_group_at_end(kafka_bootstrap, name)
    return name


@pytest.fixture
def service(
    pg_database: str, kafka_bootstrap: str, signing: SigningProcess, group: str, dossier_topic: TopicRecords
) -> Iterator[RunningDossierService]:
    running = start_apology_dossier_service(pg_database, kafka_bootstrap, START, signing.address, group)
    yield running
    running.stop()


def submit(service: RunningDossierService, procedure_code: str) -> str:
    request = pb.SubmitDossierRequest(
        procedure_code=procedure_code,
        applicant_registry_id=f"cit-{uuid.uuid4().hex[:8]}",
        applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
        channel=pb.DOSSIER_CHANNEL_COUNTER,
    )
    return str(service.stub.SubmitDossier(request, timeout=10).dossier.dossier_id)


def wait_for_events(topic: TopicRecords, ids: set[str], ce_type: str, count: int, timeout: float = 60) -> None:
    topic.wait_until(lambda: len(topic.of(ids, ce_type)) >= count, timeout, f"{count} x {ce_type}")


def wait_processed(database_url: str, group: str, event_id: str, timeout: float = 30) -> None:
    engine = make_engine(database_url)
    processed = store.tables.processed_events
    query = select(processed.c.event_id).where(processed.c.consumer == group, processed.c.event_id == event_id)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(query).first():
                    return
            time.sleep(0.2)
        raise AssertionError(f"event {event_id} not handled by {group} within {timeout}s")
    finally:
        engine.dispose()


def test_an_overdue_dossier_gets_one_signed_letter_even_when_the_event_comes_again(
    service: RunningDossierService,
    signing: SigningProcess,
    dossier_topic: TopicRecords,
    kafka_bootstrap: str,
    pg_database: str,
    group: str,
) -> None:
    dossier_id = submit(service, STP_PROCEDURE.code)
    service.clock.advance(timedelta(days=14))
    wait_for_events(dossier_topic, {dossier_id}, ISSUED, 1)
    letter = service.stub.GetApologyLetter(pb.GetApologyLetterRequest(dossier_id=dossier_id), timeout=10).letter
    [issued_record] = dossier_topic.of({dossier_id}, ISSUED)
    issued = pb.DossierApologyIssued.FromString(issued_record.value)

    [required] = dossier_topic.of({dossier_id}, REQUIRED)
    new_id = str(uuid.uuid4())
    renamed = [(k, new_id.encode() if k == "ce_id" else v) for k, v in required.headers]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(required.topic, key=required.key, value=required.value, headers=list(required.headers))
    producer.send(required.topic, key=required.key, value=required.value, headers=renamed)
    producer.flush()
    producer.close()
    wait_processed(pg_database, group, new_id)
    dossier_topic.settle()
    again = service.stub.GetApologyLetter(pb.GetApologyLetterRequest(dossier_id=dossier_id), timeout=10).letter

    assert letter.pdf.startswith(b"%PDF")
    assert letter.signature_status == pb.APOLOGY_LETTER_SIGNATURE_STATUS_SIGNED
    assert letter.sha256 == hashlib.sha256(letter.pdf).hexdigest() == issued.sha256
    assert (issued.letter_id, issued.number, issued.agency_code) == (letter.letter_id, letter.dossier_number, "STP")
    assert issued.new_appointment_at == letter.new_appointment_at
    report = signing.verify_pdf(letter.pdf)
    assert report.indication == signing_pb.INDICATION_TOTAL_PASSED, report
    assert report.level == signing_pb.SIGNATURE_LEVEL_B_T
    assert "Sở Tư pháp" in report.signer  # the agency's seal
    assert letters_in(pg_database) == {dossier_id: 1}
    assert len(dossier_topic.of({dossier_id}, ISSUED)) == 1
    assert again.letter_id == letter.letter_id and again.pdf == letter.pdf


def test_while_signing_is_down_letters_wait_and_all_follow_when_it_is_back(
    service: RunningDossierService, signing: SigningProcess, dossier_topic: TopicRecords, pg_database: str
) -> None:
    signing.stop()
    ids = {submit(service, STP_PROCEDURE.code) for _ in range(3)}
    service.clock.advance(timedelta(days=14))
    wait_for_events(dossier_topic, ids, REQUIRED, 3)
    time.sleep(2)  # the consumer is retrying against the stopped service meanwhile
    during = coverage(service, "STP")

    signing.start()
    wait_for_events(dossier_topic, ids, ISSUED, 3, timeout=60)
    dossier_topic.settle()
    after = coverage(service, "STP")

    assert (during.overdue_dossiers, during.letters_issued, set(during.missing_dossier_ids)) == (3, 0, ids)
    assert during.coverage_percent == 0.0
    assert (after.overdue_dossiers, after.letters_issued, list(after.missing_dossier_ids)) == (3, 3, [])
    assert after.coverage_percent == 100.0
    assert letters_in(pg_database) == dict.fromkeys(ids, 1)
    assert sorted(r.key.decode() for r in dossier_topic.of(ids, ISSUED)) == sorted(ids)


def test_agencies_missing_from_the_old_default_list_get_their_letters_signed(
    service: RunningDossierService, signing: SigningProcess, dossier_topic: TopicRecords
) -> None:
    """SCT and the ward P-BENNGHE had no issuing CA before the directory drove the PKI."""
    department = submit(service, SCT_PROCEDURE.code)
    ward = submit(service, WARD_PROCEDURE.code)
    service.clock.advance(timedelta(days=30))
    wait_for_events(dossier_topic, {department, ward}, ISSUED, 2, timeout=120)
    signers = {}
    for dossier_id in (department, ward):
        letter = service.stub.GetApologyLetter(pb.GetApologyLetterRequest(dossier_id=dossier_id), timeout=10).letter
        assert letter.signature_status == pb.APOLOGY_LETTER_SIGNATURE_STATUS_SIGNED
        report = signing.verify_pdf(letter.pdf)
        assert report.indication == signing_pb.INDICATION_TOTAL_PASSED, report
        signers[dossier_id] = report.signer

    assert "Sở Công Thương" in signers[department]
    assert "Phường Bến Nghé" in signers[ward]
    assert (coverage(service).letters_issued, list(coverage(service).missing_dossier_ids)) == (2, [])


@pytest.mark.parametrize("signing_directory", ["SCT"], indirect=True)
def test_a_refused_letter_is_parked_and_reported_missing_and_the_others_carry_on(
    service: RunningDossierService, dossier_topic: TopicRecords, kafka_bootstrap: str, group: str
) -> None:
    dlq = dlq_records(kafka_bootstrap)
    try:
        refused = submit(service, SCT_PROCEDURE.code)  # SCT does not sign in this directory
        service.clock.advance(timedelta(days=14))
        later = submit(service, STP_PROCEDURE.code)
        service.clock.advance(timedelta(days=14))
        dlq.wait_until(lambda: bool(dlq.of({refused})), 60, "parked apology_required")
        wait_for_events(dossier_topic, {later}, ISSUED, 1)
        [parked] = dlq.of({refused})
    finally:
        dlq.close()
    report = coverage(service)
    agency = coverage(service, SCT_PROCEDURE.agency_code)

    assert header(parked, "ce_type") == REQUIRED
    assert header(parked, "dlq_consumer") == group
    assert "FAILED_PRECONDITION" in (header(parked, "dlq_error") or "")
    assert dossier_topic.of({refused}, ISSUED) == []
    assert (report.overdue_dossiers, report.letters_issued, list(report.missing_dossier_ids)) == (2, 1, [refused])
    assert report.coverage_percent == 50.0
    assert (agency.overdue_dossiers, agency.coverage_percent) == (1, 0.0)
