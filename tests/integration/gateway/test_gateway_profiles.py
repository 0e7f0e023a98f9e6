"""The common database under the shipped policy (deploy/gateway/policy.toml): the agencies whose
duties need a citizen's or a business's profile read it through the gateway with their purpose and
see the field groups they hold; everyone else, and the right agency with a wrong or no purpose, is
refused. Real registry, dossier service, gateway read model, PostgreSQL and Kafka."""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import grpc
import pytest
from citydata.v1 import common_pb2, gateway_pb2, registry_pb2

from kit.config import REPO_ROOT
from kit.deadlines.calendar import LOCAL_TIME
from services.registry.domain import Gender, build_national_id, enterprise_check_digit
from tests.integration.gateway.readmodel_harness import Platform, ReadModelGateway, running_platform, wait_until

START = datetime(2025, 10, 6, 9, 0, tzinfo=LOCAL_TIME)
SHIPPED_POLICY = tomllib.loads((REPO_ROOT / "deploy" / "gateway" / "policy.toml").read_text(encoding="utf-8"))
AGENCIES = ["STP", "CATP", "SKHDT", "SLDTBXH", "TTPVHCC", "TTCDS", "CDVC", "TTDH"]
TOKENS = {f"tok-{code.lower()}": code for code in AGENCIES}
WITHHELD = "x-citydata-withheld-groups"


@dataclass
class Subjects:
    platform: Platform
    citizen: registry_pb2.Citizen
    business: registry_pb2.Business

    @property
    def gateway(self) -> ReadModelGateway:
        return self.platform.gateway

    def citizen_profile(self, agency: str, purpose: str = "") -> tuple[gateway_pb2.GetCitizenProfileResponse, str]:
        request = gateway_pb2.GetCitizenProfileRequest(national_id=self.citizen.national_id)
        response, call = self.gateway.stub.GetCitizenProfile.with_call(
            request, metadata=ReadModelGateway.auth(f"tok-{agency.lower()}", purpose), timeout=10
        )
        return response, dict(call.trailing_metadata() or ()).get(WITHHELD, "")

    def business_profile(self, agency: str, purpose: str = "") -> gateway_pb2.GetBusinessProfileResponse:
        request = gateway_pb2.GetBusinessProfileRequest(registry_id=self.business.registry_id)
        metadata = ReadModelGateway.auth(f"tok-{agency.lower()}", purpose)
        return self.gateway.stub.GetBusinessProfile(request, metadata=metadata, timeout=10)


def _enterprise_code() -> str:
    while True:
        nine = f"{random.randrange(10**8, 10**9)}"
        digit = enterprise_check_digit(nine)
        if digit is not None:
            return nine + digit


def _register(platform: Platform) -> tuple[registry_pb2.Citizen, registry_pb2.Business]:
    stub = platform.registry.stub
    citizen = stub.RegisterCitizen(
        registry_pb2.RegisterCitizenRequest(
            citizen=registry_pb2.CitizenInput(
                national_id=build_national_id("079", Gender.MALE, 1985, f"{random.randrange(10**6):06d}"),
                full_name="Lê Văn Cường",
                date_of_birth="1985-02-11",
                gender=registry_pb2.GENDER_MALE,
                address=common_pb2.Address(province_code="079", ward_code="26734", street="7 Pasteur"),
                phone="0903456789",
            )
        ),
        timeout=10,
    ).citizen
    business = stub.RegisterBusiness(
        registry_pb2.RegisterBusinessRequest(
            business=registry_pb2.BusinessInput(
                enterprise_code=_enterprise_code(),
                name="Công ty TNHH Bến Nghé Xanh",
                legal_representative_id=citizen.registry_id,
                address=common_pb2.Address(province_code="079", ward_code="26734", street="1 Đồng Khởi"),
                business_lines=["6201"],
            )
        ),
        timeout=10,
    ).business
    return citizen, business


@pytest.fixture(scope="module")
def subjects(infra: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Subjects]:
    tmp_path = Path(tmp_path_factory.mktemp("profiles"))
    with running_platform(infra, tmp_path, START, policy=SHIPPED_POLICY, tokens=TOKENS) as platform:
        citizen, business = _register(platform)
        found = Subjects(platform, citizen, business)

        def projected() -> bool:
            try:
                found.citizen_profile("TTCDS", "DATA_MAINTENANCE")
                found.business_profile("TTCDS", "DATA_MAINTENANCE")
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                    return False
                raise
            return True

        wait_until(projected, timeout=60, what="citizen and business in the read model")
        yield found


def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    return raised.value.code()  # type: ignore[attr-defined,no-any-return]


def test_citizen_profiles_are_read_with_the_field_groups_each_duty_justifies(subjects: Subjects) -> None:
    justice, justice_withheld = subjects.citizen_profile("STP", "CIVIL_STATUS")
    police, police_withheld = subjects.citizen_profile("CATP", "RESIDENCE_MANAGEMENT")
    welfare, _ = subjects.citizen_profile("SLDTBXH", "SOCIAL_WELFARE")
    centre, _ = subjects.citizen_profile("TTPVHCC", "PUBLIC_SERVICE")
    expected = subjects.citizen

    assert (justice.citizen.full_name, justice.citizen.address) == (expected.full_name, expected.address)
    # the trailer names only groups of what a profile holds (a Citizen), not a business's or a petition's
    assert (justice.citizen.phone, justice_withheld.split(",")) == ("", ["contact"])
    assert (police.citizen.phone, police_withheld.split(",")) == ("", ["contact"])
    assert (welfare.citizen.national_id, welfare.citizen.address, welfare.citizen.phone) == (
        expected.national_id,
        expected.address,
        "",
    )
    assert centre.citizen.phone == expected.phone
    assert {p.citizen.registry_id for p in (justice, police, welfare, centre)} == {expected.registry_id}


def test_citizen_profiles_are_refused_without_the_right_or_the_purpose(subjects: Subjects) -> None:
    denied = grpc.StatusCode.PERMISSION_DENIED
    assert _code(lambda: subjects.citizen_profile("SKHDT", "BUSINESS_REGISTRATION")) == denied  # no grant
    assert _code(lambda: subjects.citizen_profile("CDVC", "PUBLIC_SERVICE")) == denied
    assert _code(lambda: subjects.citizen_profile("TTDH")) == denied
    assert _code(lambda: subjects.citizen_profile("STP")) == denied  # no purpose
    assert _code(lambda: subjects.citizen_profile("STP", "RESIDENCE_MANAGEMENT")) == denied  # not its purpose


def test_business_profiles_are_read_by_registration_and_the_service_centre_only(subjects: Subjects) -> None:
    registration = subjects.business_profile("SKHDT", "BUSINESS_REGISTRATION")
    centre = subjects.business_profile("TTPVHCC", "PUBLIC_SERVICE")
    denied = grpc.StatusCode.PERMISSION_DENIED

    for profile in (registration, centre):
        assert profile.business.name == subjects.business.name
        assert profile.business.legal_representative_id == subjects.citizen.registry_id
    assert _code(lambda: subjects.business_profile("STP", "CIVIL_STATUS")) == denied
    assert _code(lambda: subjects.business_profile("CATP", "RESIDENCE_MANAGEMENT")) == denied
    assert _code(lambda: subjects.business_profile("SKHDT")) == denied  # the representative is personal data
    assert _code(lambda: subjects.business_profile("SKHDT", "PUBLIC_SERVICE")) == denied
