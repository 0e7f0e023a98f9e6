"""ImportDossiers checking its applicants against a real registry (gRPC, PostgreSQL): each chunk
asks the registry about its distinct applicants together; an unknown one fails its rows only,
a registry that cannot answer fails the call (UNAVAILABLE), never a row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from citydata.v1 import common_pb2
from citydata.v1 import dossier_pb2 as pb
from citydata.v1 import registry_pb2 as registry_pb
from citydata.v1.registry_pb2_grpc import (
    RegistryServiceServicer,
    RegistryServiceStub,
    add_RegistryServiceServicer_to_server,
)
from sqlalchemy.orm import sessionmaker

from kit.clock import ManualClock, SystemClock
from kit.db import UnitOfWork, make_engine
from kit.deadlines.loader import load_calendar
from kit.errors import Unavailable
from kit.grpc_server import ServiceHost, registrar
from kit.migrations import upgrade_to_head
from kit.runtime import start_runtime
from services.dossier import store
from services.dossier.api.importer import DossierImporter
from services.dossier.clients.registry import RegistryApplicantDirectory
from services.dossier.domain.lifecycle import ApplicantKind, Lifecycle
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, load_catalogue, read_catalogue
from services.registry import store as registry_store
from services.registry.api import TOPIC as REGISTRY_TOPIC
from services.registry.api.servicer import RegistryServicer
from services.registry.app import build_host
from services.registry.domain import Gender, build_national_id
from tests.integration.dossier.test_dossier_import_events_on_kafka import resolved_row
from tools.scratch import scratch_database


@dataclass
class RunningRegistry:
    host: ServiceHost
    address: str
    stub: RegistryServiceStub


@pytest.fixture
def registry(infra: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningRegistry]:
    """The registry on its own scratch database (its tables would clash with the dossier's)."""
    with scratch_database("registry_for_dossier", infra["pg_host"], infra["pg_port"]) as database_url:
        monkeypatch.setenv("REGISTRY_DATABASE_URL", database_url)
        monkeypatch.setenv("REGISTRY_OUTBOX_RELAY", "false")
        runtime = start_runtime("registry", registry_store.metadata, registry_store.tables, [REGISTRY_TOPIC])
        host = build_host(runtime, address="127.0.0.1:0")
        host.drain_delay_seconds = 0
        address = f"127.0.0.1:{host.start()}"
        channel = grpc.insecure_channel(address)
        try:
            yield RunningRegistry(host, address, RegistryServiceStub(channel))
        finally:
            channel.close()
            host.stop()
            runtime.engine.dispose()


def register_citizen(stub: RegistryServiceStub) -> str:
    citizen = registry_pb.CitizenInput(
        national_id=build_national_id("079", Gender.FEMALE, 1985, f"{uuid.uuid4().int % 1_000_000:06d}"),
        full_name="Trần Thị Bình",
        date_of_birth="1985-06-01",
        gender=registry_pb.GENDER_FEMALE,
        address=common_pb2.Address(province_code="079", ward_code="26734", street="5 Lê Lợi"),
    )
    return stub.RegisterCitizen(registry_pb.RegisterCitizenRequest(citizen=citizen), timeout=10).citizen.registry_id


def dossier_importer(database_url: str, directory: RegistryApplicantDirectory) -> DossierImporter:
    engine = make_engine(database_url)
    upgrade_to_head(engine, "dossier", store.metadata)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        load_catalogue(session, read_catalogue(SHIPPED_CATALOGUE).procedures)
    clock = ManualClock(datetime(2025, 4, 1, tzinfo=UTC))
    new_uow = lambda: UnitOfWork(sessions, store.tables, "/citydata/dossier")  # noqa: E731
    return DossierImporter(new_uow, Lifecycle(load_calendar()), directory, clock)


def test_unknown_applicants_fail_their_rows_and_a_silent_registry_fails_the_call(
    registry: RunningRegistry, pg_database: str
) -> None:
    known = register_citizen(registry.stub)
    ghost = str(uuid.uuid4())
    directory = RegistryApplicantDirectory(registry.address)
    try:
        assert directory.exists_many([(ApplicantKind.CITIZEN, known), (ApplicantKind.CITIZEN, ghost)]) == {
            (ApplicantKind.CITIZEN, known): True,
            (ApplicantKind.CITIZEN, ghost): False,
        }
        rows = [resolved_row(f"app-{i}", timedelta(days=1)) for i in range(4)]
        for row, applicant in zip(rows, [known, ghost, known, known], strict=True):
            row.applicant_registry_id = applicant
        importer = dossier_importer(pg_database, directory)
        response = importer.run([pb.ImportDossiersRequest(rows=rows)])
        assert (response.rows_imported, response.rows_failed) == (3, 1)
        assert [(f.row_number, f.message) for f in response.failures] == [
            (2, f"applicant_registry_id: {ghost!r} is not in the registry")
        ]

        registry.host.stop()
        with pytest.raises(Unavailable):
            importer.run([pb.ImportDossiersRequest(rows=[resolved_row("app-late", timedelta(days=1))])])
    finally:
        directory.close()


class RegistryBeforeCheckRegistered(RegistryServicer):
    """The real registry as it was before CheckRegistered: the generated base answers UNIMPLEMENTED."""

    CheckRegistered = RegistryServiceServicer.CheckRegistered


@pytest.fixture
def older_registry(infra: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningRegistry]:
    with scratch_database("older_registry_for_dossier", infra["pg_host"], infra["pg_port"]) as database_url:
        monkeypatch.setenv("REGISTRY_DATABASE_URL", database_url)
        monkeypatch.setenv("REGISTRY_OUTBOX_RELAY", "false")
        runtime = start_runtime("registry", registry_store.metadata, registry_store.tables, [REGISTRY_TOPIC])
        servicer = RegistryBeforeCheckRegistered(runtime.uow, SystemClock())
        host = ServiceHost(
            service="registry",
            address="127.0.0.1:0",
            registrars=[registrar(add_RegistryServiceServicer_to_server, servicer)],
            service_names=["citydata.v1.RegistryService"],
        )
        host.drain_delay_seconds = 0
        address = f"127.0.0.1:{host.start()}"
        channel = grpc.insecure_channel(address)
        try:
            yield RunningRegistry(host, address, RegistryServiceStub(channel))
        finally:
            channel.close()
            host.stop()
            runtime.engine.dispose()


def test_a_registry_without_check_registered_is_asked_one_applicant_at_a_time(
    older_registry: RunningRegistry,
) -> None:
    known = register_citizen(older_registry.stub)
    ghost = str(uuid.uuid4())
    directory = RegistryApplicantDirectory(older_registry.address)
    try:
        for _ in range(2):  # the second time without trying CheckRegistered first
            assert directory.exists_many([(ApplicantKind.CITIZEN, known), (ApplicantKind.CITIZEN, ghost)]) == {
                (ApplicantKind.CITIZEN, known): True,
                (ApplicantKind.CITIZEN, ghost): False,
            }
    finally:
        directory.close()
