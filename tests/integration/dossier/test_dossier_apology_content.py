"""What the signed apology letter says, read back from the PDF with poppler's pdftotext, against
the real registry (applicants), signing service (SoftHSM), PostgreSQL and Kafka: Form 04's label,
the parent body above the agency, the letter's number in the agency's yearly series, the applicant
as the registry knows them (Ông/Bà by gender with the CCCD, a business by name with its tax code),
the reason an officer recorded with RecordDelayReason, and the new appointment, or, for a dossier
imported as resolved late, the date its result was ready instead of a promise."""

from __future__ import annotations

import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from citydata.v1 import common_pb2, registry_pb2
from citydata.v1 import dossier_pb2 as pb
from citydata.v1 import signing_pb2 as signing_pb

from kit.config import REPO_ROOT
from kit.deadlines.calendar import LOCAL_TIME
from kit.proto_time import timestamp
from services.dossier.clients.registry import RegistryApplicantDirectory
from services.dossier.domain.apology import DEFAULT_REASON
from services.registry.domain import Gender, build_national_id
from services.registry.domain.identifiers import enterprise_check_digit
from tests.integration.dossier.apology_support import (
    SigningProcess,
    TopicRecords,
    extra_pg_database,
    signing_process,
    start_apology_dossier_service,
    start_group_at_end,
    unique_group,
)
from tests.integration.dossier.dossier_harness import RunningDossierService, pick_procedure
from tests.integration.dossier.test_dossier_lifecycle_grpc import precondition_type
from tests.integration.gateway.readmodel_harness import RunningRegistry, start_registry

START = datetime(2025, 3, 3, 9, 0, tzinfo=LOCAL_TIME)
STP_PROCEDURE = pick_procedure(lambda p: p.agency_code == "STP" and p.online_level < 4)
ISSUED = "dossier.apology_issued"
RENDERED = REPO_ROOT / "var" / "apology-letter-content"


@pytest.fixture
def signing(tmp_path: Path, kafka_bootstrap: str) -> Iterator[SigningProcess]:
    process = signing_process(tmp_path, f"sqlite:///{tmp_path / 'signing.db'}", kafka_bootstrap)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def registry(infra: dict[str, str], kafka_bootstrap: str) -> Iterator[RunningRegistry]:
    with extra_pg_database(infra) as database_url:
        running = start_registry(database_url, kafka_bootstrap)
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture
def dossier_topic(kafka_bootstrap: str) -> Iterator[TopicRecords]:
    records = TopicRecords(kafka_bootstrap)
    yield records
    records.close()


@pytest.fixture
def service(
    pg_database: str,
    kafka_bootstrap: str,
    signing: SigningProcess,
    registry: RunningRegistry,
    dossier_topic: TopicRecords,
) -> Iterator[RunningDossierService]:
    group = unique_group()
    start_group_at_end(kafka_bootstrap, group)
    applicants = RegistryApplicantDirectory(registry.target)
    running = start_apology_dossier_service(pg_database, kafka_bootstrap, START, signing.address, group, applicants)
    yield running
    running.stop()
    applicants.close()


def register_citizen(registry: RunningRegistry, name: str, gender: Gender) -> registry_pb2.Citizen:
    national_id = build_national_id("079", gender, 1990, f"{random.randrange(10**6):06d}")
    citizen = registry_pb2.CitizenInput(
        national_id=national_id,
        full_name=name,
        date_of_birth="1990-05-20",
        gender=registry_pb2.GENDER_MALE if gender is Gender.MALE else registry_pb2.GENDER_FEMALE,
        address=common_pb2.Address(province_code="079", ward_code="26734", street="5 Nguyễn Huệ"),
    )
    request = registry_pb2.RegisterCitizenRequest(citizen=citizen, idempotency_key=str(uuid.uuid4()))
    return registry.stub.RegisterCitizen(request, timeout=10).citizen


def register_business(registry: RunningRegistry, representative: str) -> registry_pb2.Business:
    check = None
    while check is None:
        head = f"03{random.randrange(10**7):07d}"
        check = enterprise_check_digit(head)
    business = registry_pb2.BusinessInput(
        enterprise_code=head + check,
        name="Công ty TNHH Sao Mai",
        legal_representative_id=representative,
        address=common_pb2.Address(province_code="079", ward_code="26734", street="12 Lê Lợi"),
        business_lines=["6201"],
    )
    request = registry_pb2.RegisterBusinessRequest(business=business, idempotency_key=str(uuid.uuid4()))
    return registry.stub.RegisterBusiness(request, timeout=10).business


def submit(service: RunningDossierService, registry_id: str, kind: int) -> pb.Dossier:
    request = pb.SubmitDossierRequest(
        procedure_code=STP_PROCEDURE.code,
        applicant_registry_id=registry_id,
        applicant_kind=kind,  # type: ignore[arg-type]
        channel=pb.DOSSIER_CHANNEL_COUNTER,
    )
    return service.stub.SubmitDossier(request, timeout=10).dossier


def letter_of(service: RunningDossierService, dossier_id: str) -> pb.ApologyLetter:
    return service.stub.GetApologyLetter(pb.GetApologyLetterRequest(dossier_id=dossier_id), timeout=10).letter


def text_of(letter: pb.ApologyLetter, name: str) -> str:
    """The letter's text as pdftotext reads it; the PDF and its first page as PNG stay in
    var/apology-letter-content/ for a human look."""
    for tool in ("pdftotext", "pdftoppm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (Debian package poppler-utils)")
    RENDERED.mkdir(parents=True, exist_ok=True)
    path = RENDERED / f"{name}.pdf"
    path.write_bytes(letter.pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(path), str(RENDERED / name)], check=True)
    return " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout.split())


def local_moment(stamp: object) -> str:
    local = stamp.ToDatetime(tzinfo=UTC).astimezone(LOCAL_TIME)  # type: ignore[attr-defined]
    return f"{local:%H} giờ {local:%M} phút, ngày {local:%d/%m/%Y}"


@pytest.mark.timeout(240)
def test_signed_letters_read_as_form_04_with_number_identity_and_the_recorded_reason(
    service: RunningDossierService,
    registry: RunningRegistry,
    signing: SigningProcess,
    dossier_topic: TopicRecords,
) -> None:
    woman = register_citizen(registry, "Trần Thị Bình", Gender.FEMALE)
    man = register_citizen(registry, "Nguyễn Văn An", Gender.MALE)
    company = register_business(registry, man.registry_id)
    hers = submit(service, woman.registry_id, pb.DOSSIER_APPLICANT_KIND_CITIZEN)
    his = submit(service, man.registry_id, pb.DOSSIER_APPLICANT_KIND_CITIZEN)
    its = submit(service, company.registry_id, pb.DOSSIER_APPLICANT_KIND_BUSINESS)
    reason = "Hồ sơ phải lấy ý kiến của Bộ Tư pháp; văn bản trả lời chưa đến."
    recorded = service.stub.RecordDelayReason(
        pb.RecordDelayReasonRequest(dossier_id=hers.dossier_id, reason=f"  {reason}\n"), timeout=10
    )
    service.clock.advance(timedelta(days=14))
    ids = {hers.dossier_id, his.dossier_id, its.dossier_id}
    dossier_topic.wait_until(lambda: len(dossier_topic.of(ids, ISSUED)) == 3, 120, "three letters")
    letters = {dossier_id: letter_of(service, dossier_id) for dossier_id in ids}
    with pytest.raises(grpc.RpcError) as too_late:
        service.stub.RecordDelayReason(
            pb.RecordDelayReasonRequest(dossier_id=his.dossier_id, reason="Thiếu cán bộ."), timeout=10
        )
    her_text = text_of(letters[hers.dossier_id], "hers")
    his_text = text_of(letters[his.dossier_id], "his")
    its_text = text_of(letters[its.dossier_id], "its")

    assert recorded.reason == reason
    assert sorted(letter.letter_number for letter in letters.values()) == ["1/PXL-STP", "2/PXL-STP", "3/PXL-STP"]
    for text in (her_text, his_text, its_text):
        assert "Mẫu số 04" in text
        assert "ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH SỞ TƯ PHÁP" in text  # the parent body's line first
        assert "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ" in text
        assert woman.registry_id not in text and man.registry_id not in text and company.registry_id not in text
    for dossier_id, text in ((hers.dossier_id, her_text), (his.dossier_id, his_text), (its.dossier_id, its_text)):
        letter = letters[dossier_id]
        assert f"Số: {letter.letter_number}" in text
        assert f"vào {local_moment(letter.new_appointment_at)}." in text
        assert letter.new_appointment_at.ToDatetime(tzinfo=UTC) > service.clock.now()
        report = signing.verify_pdf(letter.pdf)
        assert report.indication == signing_pb.INDICATION_TOTAL_PASSED, report
        assert report.level == signing_pb.SIGNATURE_LEVEL_B_T
    assert f"Kính gửi: Bà Trần Thị Bình (số định danh cá nhân/CCCD: {woman.national_id})." in her_text
    assert "Sở Tư pháp xin lỗi Bà và sẽ trả kết quả giải quyết hồ sơ cho Bà" in her_text
    assert f"Lý do: {reason}" in her_text and letters[hers.dossier_id].reason == reason
    assert f"Kính gửi: Ông Nguyễn Văn An (số định danh cá nhân/CCCD: {man.national_id})." in his_text
    assert f"Lý do: {DEFAULT_REASON}" in his_text and letters[his.dossier_id].reason == DEFAULT_REASON
    assert f"Kính gửi: Công ty TNHH Sao Mai (mã số thuế: {company.enterprise_code})." in its_text
    assert "của Công ty TNHH Sao Mai." in its_text and "Ông/Bà" not in its_text
    assert too_late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_type(too_late.value) == "APOLOGY_ALREADY_ISSUED"


@pytest.mark.timeout(180)
def test_a_dossier_imported_as_resolved_late_gets_a_letter_that_says_when_the_result_was_ready(
    service: RunningDossierService, registry: RunningRegistry, dossier_topic: TopicRecords
) -> None:
    man = register_citizen(registry, "Lê Văn Cường", Gender.MALE)
    received = START - timedelta(days=60)
    resolved = received + timedelta(days=30)  # far past the procedure's deadline
    row = pb.ImportedDossier(
        import_key=f"late-{uuid.uuid4().hex}",
        procedure_code=STP_PROCEDURE.code,
        applicant_registry_id=man.registry_id,
        applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
        channel=pb.DOSSIER_CHANNEL_COUNTER,
        received_at=timestamp(received),
        steps=[
            pb.ImportedDossierStep(action="ACCEPT", occurred_at=timestamp(received + timedelta(hours=1))),
            pb.ImportedDossierStep(action="RESOLVE", occurred_at=timestamp(resolved)),
        ],
    )
    imported = service.stub.ImportDossiers(iter([pb.ImportDossiersRequest(rows=[row])]), timeout=60)
    [dossier] = service.stub.ListDossiers(pb.ListDossiersRequest(agency_code="STP"), timeout=10).dossiers
    dossier_topic.wait_until(lambda: bool(dossier_topic.of({dossier.dossier_id}, ISSUED)), 90, "the letter")
    letter = letter_of(service, dossier.dossier_id)
    text = text_of(letter, "late")

    assert imported.rows_imported == 1 and not dossier.on_time
    assert letter.new_appointment_at.ToDatetime(tzinfo=UTC) == resolved.astimezone(UTC)  # the past, no promise
    assert f"Kết quả giải quyết hồ sơ đã có vào {local_moment(letter.new_appointment_at)}" in text
    assert "chậm so với thời gian hẹn trả kết quả" in text
    assert "Sở Tư pháp xin lỗi Ông vì đã không giải quyết hồ sơ đúng thời gian đã hẹn" in text
    assert "sẽ trả kết quả" not in text and "chưa trả kết quả" not in text
    assert f"Kính gửi: Ông Lê Văn Cường (số định danh cá nhân/CCCD: {man.national_id})." in text
    assert "Số: 1/PXL-STP" in text
