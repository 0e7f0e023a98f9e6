"""End to end: the dossier and signing services as real processes on PostgreSQL (signing on a
SoftHSM token). A dossier received 10 working days ago for a 3-day procedure is imported →
dossier.imported (its missed deadline inside) → dossier.apology_required → dossier.apology_issued
on Kafka; the letter from GetApologyLetter is a PDF whose PAdES signature pyHanko validates
against the city root, whose text (pdftotext) names the dossier and apologises, and whose first
page is rendered to var/ for a human look at the Vietnamese diacritics."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from io import BytesIO
from pathlib import Path

import grpc
import pytest
from asn1crypto import x509
from citydata.v1 import dossier_pb2 as pb
from citydata.v1 import dossier_pb2_grpc
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from kit.config import REPO_ROOT
from kit.deadlines.calendar import LOCAL_TIME
from kit.deadlines.loader import load_calendar
from tests.integration.dossier.apology_support import (
    DossierProcess,
    SigningProcess,
    TopicRecords,
    dossier_process,
    extra_pg_database,
    import_overdue,
    signing_process,
    start_group_at_end,
    unique_group,
)
from tests.integration.dossier.dossier_harness import pick_procedure
from tests.support.kafka_tools import header

PROCEDURE = pick_procedure(lambda p: p.agency_code == "STP" and p.processing_time == 3 and p.online_level < 4)
CHAIN = ["dossier.imported", "dossier.apology_required", "dossier.apology_issued"]
RENDERED = REPO_ROOT / "var" / "apology-letter-e2e"


def working_days_ago(count: int) -> date:
    calendar, today = load_calendar(), datetime.now(LOCAL_TIME).date()
    day = today
    while calendar.working_days_between(day, today) < count or not calendar.is_working_day(day):
        day -= timedelta(days=1)
    return day


@pytest.fixture
def signing(tmp_path: Path, infra: dict[str, str], kafka_bootstrap: str) -> Iterator[SigningProcess]:
    with extra_pg_database(infra) as database_url:
        process = signing_process(tmp_path, database_url, kafka_bootstrap)
        process.start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture
def dossier(
    tmp_path: Path, pg_database: str, kafka_bootstrap: str, signing: SigningProcess
) -> Iterator[DossierProcess]:
    group = unique_group()
    start_group_at_end(kafka_bootstrap, group)
    process = dossier_process(tmp_path, pg_database, kafka_bootstrap, signing.address, group)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.timeout(180)
def test_an_overdue_import_ends_with_a_signed_vietnamese_apology_letter(
    dossier: DossierProcess, signing: SigningProcess, kafka_bootstrap: str
) -> None:
    for tool in ("pdftotext", "pdftoppm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (Debian package poppler-utils)")
    topic = TopicRecords(kafka_bootstrap)
    received = datetime.combine(working_days_ago(10), time(9, 0), tzinfo=LOCAL_TIME)
    try:
        with grpc.insecure_channel(dossier.address) as channel:
            stub = dossier_pb2_grpc.DossierServiceStub(channel)
            imported = import_overdue(stub, PROCEDURE.code, received, 1)
            [listed] = stub.ListDossiers(pb.ListDossiersRequest(agency_code="STP"), timeout=10).dossiers
            dossier_id = listed.dossier_id
            topic.wait_until(lambda: bool(topic.of({dossier_id}, CHAIN[-1])), 90, "dossier.apology_issued")
            letter = stub.GetApologyLetter(pb.GetApologyLetterRequest(dossier_id=dossier_id), timeout=10).letter
            report = stub.GetApologyCoverage(pb.GetApologyCoverageRequest(), timeout=10)
    finally:
        topic.close()
    chain = [header(r, "ce_type") for r in topic.of({dossier_id}) if header(r, "ce_type") in CHAIN]

    root = x509.Certificate.load(signing.root_certificate_der())
    [embedded] = PdfFileReader(BytesIO(letter.pdf)).embedded_signatures
    status = validate_pdf_signature(embedded, ValidationContext(trust_roots=[root], allow_fetching=False))
    RENDERED.parent.mkdir(parents=True, exist_ok=True)
    pdf_path = RENDERED.with_suffix(".pdf")
    pdf_path.write_bytes(letter.pdf)
    text = " ".join(subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, text=True).stdout.split())
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf_path), str(RENDERED)], check=True)

    assert imported.rows_imported == 1
    assert chain == CHAIN
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.timestamp_validity is not None and status.timestamp_validity.valid
    assert "Sở Tư pháp" in status.signing_cert.subject.human_friendly
    assert listed.number in text and "xin lỗi" in text
    assert "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ" in text
    assert letter.new_appointment_at.ToDatetime(tzinfo=UTC) > datetime.now(UTC)  # counted from today
    assert (report.overdue_dossiers, report.letters_issued, report.coverage_percent) == (1, 1, 100.0)
    assert next(RENDERED.parent.glob(f"{RENDERED.name}*.png")).stat().st_size > 0
