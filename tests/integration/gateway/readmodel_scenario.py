"""A known day at one agency, played through the real services: three dossiers of one procedure
received on Monday 15 September 2025: one resolved on time, one resolved late, one still overdue, and
an apology letter issued for the overdue one. The expected KPIs follow from the services' answers."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from citydata.v1 import common_pb2, dossier_pb2, registry_pb2
from kafka import KafkaProducer

from kit.deadlines.calendar import LOCAL_TIME
from kit.events import encode_outbox_row
from services.dossier.domain.procedures import Procedure, TimeUnit
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, read_catalogue
from services.dossier.store.events import TOPIC as DOSSIER_TOPIC
from services.registry.domain import Gender, build_national_id
from tests.integration.gateway.readmodel_harness import Platform, wait_until

# The topics are shared with every other test and tool on this machine: an unusual day and a
# procedure drawn at random keep this scenario's figures apart from anything else on them.
START = datetime(2025, 9, 15, 9, 0, tzinfo=LOCAL_TIME)


@dataclass(frozen=True)
class Scenario:
    procedure: Procedure
    citizen: registry_pb2.Citizen
    on_time: dossier_pb2.Dossier
    late: dossier_pb2.Dossier
    overdue: dossier_pb2.Dossier
    due_day: date
    late_resolution_day: date

    @property
    def dossier_ids(self) -> set[str]:
        return {self.on_time.dossier_id, self.late.dossier_id, self.overdue.dossier_id}


def local_day(stamp: object) -> date:
    return stamp.ToDatetime(tzinfo=UTC).astimezone(LOCAL_TIME).date()  # type: ignore[attr-defined]


def register_citizen(platform: Platform) -> registry_pb2.Citizen:
    national_id = build_national_id("079", Gender.FEMALE, 1991, f"{random.randrange(10**6):06d}")
    citizen = registry_pb2.CitizenInput(
        national_id=national_id,
        full_name="Trần Thị Bình",
        date_of_birth="1991-07-15",
        gender=registry_pb2.GENDER_FEMALE,
        address=common_pb2.Address(province_code="079", ward_code="26734", street="5 Nguyễn Huệ"),
        phone="0907654321",
    )
    request = registry_pb2.RegisterCitizenRequest(citizen=citizen, idempotency_key=str(uuid.uuid4()))
    return platform.registry.stub.RegisterCitizen(request, timeout=10).citizen


def random_procedure() -> Procedure:
    """A procedure in force, open online, free, and due within a week."""
    suitable = [
        p
        for p in read_catalogue(SHIPPED_CATALOGUE).procedures
        if p.abolished_from is None
        and p.time_unit is TimeUnit.WORKING_DAYS
        and p.online_level >= 3
        and p.fee_vnd == 0
        and p.processing_time <= 5
    ]
    return random.choice(suitable)


def play(platform: Platform) -> Scenario:
    procedure = random_procedure()
    citizen = register_citizen(platform)
    stub, clock = platform.dossier.stub, platform.dossier.clock

    def submit(channel: int) -> dossier_pb2.Dossier:
        request = dossier_pb2.SubmitDossierRequest(
            procedure_code=procedure.code,
            applicant_registry_id=citizen.registry_id,
            applicant_kind=dossier_pb2.DOSSIER_APPLICANT_KIND_CITIZEN,
            channel=channel,  # type: ignore[arg-type]
        )
        dossier = stub.SubmitDossier(request, timeout=10).dossier
        stub.AcceptDossier(dossier_pb2.AcceptDossierRequest(dossier_id=dossier.dossier_id), timeout=10)
        return dossier

    on_time = submit(dossier_pb2.DOSSIER_CHANNEL_COUNTER)
    late = submit(dossier_pb2.DOSSIER_CHANNEL_ONLINE)
    overdue = submit(dossier_pb2.DOSSIER_CHANNEL_POST)
    clock.advance(timedelta(hours=2))
    stub.ResolveDossier(dossier_pb2.ResolveDossierRequest(dossier_id=on_time.dossier_id), timeout=10)
    clock.set(late.due_at.ToDatetime(tzinfo=UTC) + timedelta(days=1))
    resolved = stub.ResolveDossier(dossier_pb2.ResolveDossierRequest(dossier_id=late.dossier_id), timeout=10).dossier
    assert not resolved.on_time
    wait_until(
        lambda: (
            stub.GetDossier(
                dossier_pb2.GetDossierRequest(dossier_id=overdue.dossier_id), timeout=10
            ).dossier.missed_deadlines
        ),
        what="the deadline watcher marking the third dossier overdue",
    )
    issue_apology_letter(platform.gateway.kafka, overdue.dossier_id, clock.now())
    return Scenario(procedure, citizen, on_time, late, overdue, local_day(late.due_at), local_day(resolved.resolved_at))


def issue_apology_letter(kafka: str, dossier_id: str, at: datetime) -> None:
    """`dossier.apology_issued` as the dossier service will publish it (keyed by the dossier id);
    the read model relies on the type and key only, so an empty payload stands in for it."""
    row = {
        "id": str(uuid.uuid4()),
        "type": "dossier.apology_issued",
        "aggregateid": dossier_id,
        "payload": b"",
        "headers": {
            "source": "/citydata/dossier",
            "dataschema": "proto:citydata.v1.DossierApologyIssued",
            "time": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        },
    }
    message = encode_outbox_row(row)
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    try:
        producer.send(DOSSIER_TOPIC, key=message.key, value=message.value, headers=list(message.headers.items()))
        producer.flush(timeout=10)
    finally:
        producer.close()
