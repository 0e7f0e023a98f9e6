"""The data tracker ("who looked at my data") through the real gateway, registry and dossier services.

Every kind of access to a person's data or dossiers, allowed or refused, made through the gateway
by whichever identifier the caller had at hand (national id, enterprise code, registry id, or only
a dossier id), must appear when the person asks by national id, by tax code or by registry id."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from citydata.v1 import common_pb2, dossier_pb2, gateway_pb2, registry_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, read_catalogue
from services.gateway import store
from services.registry.domain import Gender, build_national_id, enterprise_check_digit
from tests.integration.gateway.readmodel_harness import Platform, running_platform, wait_until

START = datetime(2025, 10, 6, 9, 0, tzinfo=UTC)
ALLOWED, REFUSED = "tok-tt-hcc", "tok-no-rights"
PURPOSE = "PUBLIC_SERVICE"


@dataclass
class People:
    citizen: registry_pb2.Citizen
    business: registry_pb2.Business
    stranger: registry_pb2.Citizen
    citizen_accesses: list[tuple[str, str]]
    business_accesses: list[tuple[str, str]]
    stranger_accesses: list[tuple[str, str]]
    citizen_dossier: str
    business_dossier: str


@pytest.fixture(scope="module")
def platform(infra: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(infra, Path(tmp_path_factory.mktemp("tracker")), START) as running:
        yield running


def _national_id() -> str:
    return build_national_id("079", Gender.MALE, 1988, f"{random.randrange(10**6):06d}")


def _enterprise_code() -> str:
    while True:
        nine = f"03{random.randrange(10**7):07d}"
        digit = enterprise_check_digit(nine)
        if digit is not None:
            return nine + digit


def _register_citizen(platform: Platform, name: str) -> registry_pb2.Citizen:
    citizen = registry_pb2.CitizenInput(
        national_id=_national_id(),
        full_name=name,
        date_of_birth="1988-02-29",
        gender=registry_pb2.GENDER_MALE,
        address=common_pb2.Address(province_code="079", ward_code="26734", street="7 Pasteur"),
    )
    return platform.registry.stub.RegisterCitizen(
        registry_pb2.RegisterCitizenRequest(citizen=citizen), timeout=10
    ).citizen


def _register_business(platform: Platform, representative: str) -> registry_pb2.Business:
    business = registry_pb2.BusinessInput(
        enterprise_code=_enterprise_code(),
        name="Công ty TNHH Bến Thành Số",
        legal_representative_id=representative,
        address=common_pb2.Address(province_code="079", ward_code="26734", street="1 Đồng Khởi"),
        business_lines=["6201"],
    )
    return platform.registry.stub.RegisterBusiness(
        registry_pb2.RegisterBusinessRequest(business=business), timeout=10
    ).business


def _procedure_code() -> str:
    procedure = next(
        p for p in read_catalogue(SHIPPED_CATALOGUE).procedures if p.abolished_from is None and p.fee_vnd == 0
    )
    return procedure.code


class Caller:
    """Calls through the gateway, remembering (method, outcome) of each: what the tracker must list."""

    def __init__(self, platform: Platform) -> None:
        self.channel = platform.gateway.channel

    def call(
        self, made: list[tuple[str, str]], method: str, request: Message, response_type: type[Message], token: str
    ) -> Any:
        stub = self.channel.unary_unary(
            method, request_serializer=_serialize, response_deserializer=response_type.FromString
        )
        metadata = (("authorization", f"Bearer {token}"), ("x-citydata-purpose", PURPOSE))
        try:
            response = stub(request, metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            made.append((method, error.code().name))  # type: ignore[attr-defined]
            return None
        made.append((method, "OK"))
        return response

    def import_dossiers(self, made: list[tuple[str, str]], rows: list[dossier_pb2.ImportedDossier]) -> Any:
        method = "/citydata.v1.DossierService/ImportDossiers"
        stub = self.channel.stream_unary(
            method, request_serializer=_serialize, response_deserializer=dossier_pb2.ImportDossiersResponse.FromString
        )
        metadata = (("authorization", f"Bearer {ALLOWED}"),)
        response = stub(iter([dossier_pb2.ImportDossiersRequest(rows=rows)]), metadata=metadata, timeout=20)
        made.append((method, "OK"))
        return response


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _known_to_read_model(platform: Platform, table: Any, column: Any, value: str) -> Callable[[], bool]:
    def probe() -> bool:
        with platform.gateway.engine.connect() as conn:
            return conn.execute(select(column).where(column == value)).first() is not None

    return probe


@pytest.fixture(scope="module")
def people(platform: Platform) -> People:
    rm = store.readmodel
    citizen = _register_citizen(platform, "Lê Văn Tâm")
    stranger = _register_citizen(platform, "Phạm Thị Hoa")
    business = _register_business(platform, citizen.registry_id)
    for probe, what in (
        (_known_to_read_model(platform, rm.citizens, rm.citizens.c.registry_id, citizen.registry_id), "citizen"),
        (_known_to_read_model(platform, rm.businesses, rm.businesses.c.registry_id, business.registry_id), "business"),
    ):
        wait_until(probe, what=f"the read model knowing the {what}")

    caller = Caller(platform)
    mine: list[tuple[str, str]] = []
    firm: list[tuple[str, str]] = []
    theirs: list[tuple[str, str]] = []
    get_citizen = "/citydata.v1.RegistryService/GetCitizen"
    # A refused lookup names only the national id: nothing in it says which registry id that is.
    caller.call(
        mine,
        get_citizen,
        registry_pb2.GetCitizenRequest(national_id=citizen.national_id),
        registry_pb2.GetCitizenResponse,
        REFUSED,
    )
    caller.call(
        mine,
        get_citizen,
        registry_pb2.GetCitizenRequest(registry_id=citizen.registry_id),
        registry_pb2.GetCitizenResponse,
        ALLOWED,
    )
    caller.call(
        theirs,
        get_citizen,
        registry_pb2.GetCitizenRequest(national_id=stranger.national_id),
        registry_pb2.GetCitizenResponse,
        ALLOWED,
    )
    caller.call(
        firm,
        "/citydata.v1.RegistryService/GetBusiness",
        registry_pb2.GetBusinessRequest(enterprise_code=business.enterprise_code),
        registry_pb2.GetBusinessResponse,
        REFUSED,
    )

    code = _procedure_code()

    def submit(made: list[tuple[str, str]], applicant: str, kind: int) -> str:
        request = dossier_pb2.SubmitDossierRequest(
            procedure_code=code,
            applicant_registry_id=applicant,
            applicant_kind=kind,  # type: ignore[arg-type]
            channel=dossier_pb2.DOSSIER_CHANNEL_COUNTER,
        )
        response = caller.call(
            made, "/citydata.v1.DossierService/SubmitDossier", request, dossier_pb2.SubmitDossierResponse, ALLOWED
        )
        return str(response.dossier.dossier_id)

    citizen_dossier = submit(mine, citizen.registry_id, dossier_pb2.DOSSIER_APPLICANT_KIND_CITIZEN)
    business_dossier = submit(firm, business.registry_id, dossier_pb2.DOSSIER_APPLICANT_KIND_BUSINESS)
    caller.import_dossiers(
        mine,
        [
            dossier_pb2.ImportedDossier(
                import_key=f"tracker-{uuid.uuid4()}",
                procedure_code=code,
                applicant_registry_id=citizen.registry_id,
                applicant_kind=dossier_pb2.DOSSIER_APPLICANT_KIND_CITIZEN,
                channel=dossier_pb2.DOSSIER_CHANNEL_POST,
                received_at=_timestamp(START - timedelta(days=30)),
            )
        ],
    )
    # Calls that name only a dossier id, allowed and refused, before and after the read model
    # learns whose dossier it is: the tracker links them when asked, not when they happen.
    for made, dossier_id in ((mine, citizen_dossier), (firm, business_dossier)):
        caller.call(
            made,
            "/citydata.v1.DossierService/AcceptDossier",
            dossier_pb2.AcceptDossierRequest(dossier_id=dossier_id),
            dossier_pb2.AcceptDossierResponse,
            REFUSED,
        )
        caller.call(
            made,
            "/citydata.v1.DossierService/AcceptDossier",
            dossier_pb2.AcceptDossierRequest(dossier_id=dossier_id),
            dossier_pb2.AcceptDossierResponse,
            ALLOWED,
        )
        caller.call(
            made,
            "/citydata.v1.DossierService/GetDossier",
            dossier_pb2.GetDossierRequest(dossier_id=dossier_id),
            dossier_pb2.GetDossierResponse,
            ALLOWED,
        )
        # No letter was issued: NOT_FOUND, still an attempt at a letter that holds the applicant's name.
        caller.call(
            made,
            "/citydata.v1.DossierService/GetApologyLetter",
            dossier_pb2.GetApologyLetterRequest(dossier_id=dossier_id),
            dossier_pb2.GetApologyLetterResponse,
            ALLOWED,
        )
    for dossier_id in (citizen_dossier, business_dossier):
        wait_until(
            _known_to_read_model(platform, rm.dossiers, rm.dossiers.c.dossier_id, dossier_id),
            what="the read model knowing the dossier's applicant",
        )
    return People(citizen, business, stranger, mine, firm, theirs, citizen_dossier, business_dossier)


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def tracker(platform: Platform, page_size: int = 500, **subject: str) -> list[gateway_pb2.DataAccess]:
    """Every entry of one person's tracker, all pages, as the citizen's portal would read it."""
    entries: list[gateway_pb2.DataAccess] = []
    token = ""
    while True:
        request = gateway_pb2.ListDataAccessRequest(page_size=page_size, page_token=token, **subject)  # type: ignore[arg-type]
        response = platform.gateway.stub.ListDataAccess(request, metadata=platform.gateway.auth(ALLOWED), timeout=10)
        entries.extend(response.accesses)
        token = response.next_page_token
        if not token:
            return entries


def data_calls(entries: list[gateway_pb2.DataAccess]) -> list[tuple[str, str]]:
    """The entries that are not the tracker reading itself, oldest first."""
    return [(e.method, e.outcome) for e in reversed(entries) if not e.method.endswith("/ListDataAccess")]


def test_the_citizen_sees_every_access_whichever_identifier_they_ask_by(platform: Platform, people: People) -> None:
    citizen = people.citizen
    for subject in (
        {"national_id": citizen.national_id},
        {"tax_code": citizen.national_id},
        {"registry_id": citizen.registry_id},
    ):
        assert data_calls(tracker(platform, **subject)) == people.citizen_accesses, subject


def test_the_business_sees_every_access_by_tax_code_and_registry_id(platform: Platform, people: People) -> None:
    business = people.business
    status, body, _ = platform.gateway.http(f"/v1/data-access?tax_code={business.enterprise_code}", token=ALLOWED)
    assert status == 200
    http_calls = [(a["method"], a["outcome"]) for a in reversed(body["accesses"])]
    assert [c for c in http_calls if not c[0].endswith("/ListDataAccess")] == people.business_accesses
    for subject in ({"tax_code": business.enterprise_code}, {"registry_id": business.registry_id}):
        assert data_calls(tracker(platform, **subject)) == people.business_accesses, subject


def test_each_entry_names_the_identifiers_and_dossiers_it_touched(platform: Platform, people: People) -> None:
    entries = [
        e for e in tracker(platform, national_id=people.citizen.national_id) if not e.method.endswith("/ListDataAccess")
    ]
    matched = {(e.method, e.outcome): {(s.kind, s.value) for s in e.matched} for e in entries}

    refused_lookup = matched[("/citydata.v1.RegistryService/GetCitizen", "PERMISSION_DENIED")]
    letter = matched[("/citydata.v1.DossierService/GetApologyLetter", "NOT_FOUND")]
    assert refused_lookup == {("national_id", people.citizen.national_id)}
    assert letter == {("dossier_id", people.citizen_dossier)}
    # Other people's identifiers never show: the business's dossier is not the citizen's.
    everything = set().union(*matched.values())
    assert ("dossier_id", people.business_dossier) not in everything


def test_nobody_elses_accesses_show_and_pages_add_up(platform: Platform, people: People) -> None:
    stranger = tracker(platform, national_id=people.stranger.national_id)
    assert data_calls(stranger) == people.stranger_accesses

    whole = tracker(platform, registry_id=people.citizen.registry_id)
    paged = tracker(platform, page_size=2, registry_id=people.citizen.registry_id)
    sequences = [e.sequence for e in paged]
    assert len(set(sequences)) == len(sequences), "an entry showed up on two pages"
    # The paged walk made more ListDataAccess calls, so it sees the whole list plus those.
    assert {e.sequence for e in whole} <= set(sequences)
    assert data_calls(paged) == people.citizen_accesses


def test_the_tracker_refuses_a_request_without_a_subject(platform: Platform) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        platform.gateway.stub.ListDataAccess(
            gateway_pb2.ListDataAccessRequest(tax_code="   "), metadata=platform.gateway.auth(ALLOWED), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
