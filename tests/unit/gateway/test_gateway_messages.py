"""What the gateway reads out of and cuts out of registry messages."""

from __future__ import annotations

import pytest
from citydata.v1 import common_pb2, dossier_pb2, registry_pb2

from services.gateway.api.messages import subjects_of, withhold_fields
from services.gateway.domain.audit import Subject, tax_code_subject

CITIZEN = registry_pb2.Citizen(
    registry_id="r-1",
    national_id="079203001234",
    full_name="Trần Thị Bình",
    phone="+84901234567",
    address=common_pb2.Address(ward_code="26734"),
)


def test_subjects_are_found_at_any_depth_and_under_aliases() -> None:
    search = registry_pb2.SearchCitizensResponse(results=[registry_pb2.CitizenSearchResult(citizen=CITIZEN)])
    assert subjects_of(search) == {Subject("registry_id", "r-1"), Subject("national_id", "079203001234")}
    business = registry_pb2.GetBusinessResponse(
        business=registry_pb2.Business(registry_id="b-1", legal_representative_id="r-9", enterprise_code="0301234567")
    )
    assert subjects_of(business) == {
        Subject("registry_id", "b-1"),
        Subject("registry_id", "r-9"),
        Subject("enterprise_code", "0301234567"),
    }


def test_a_lookup_by_enterprise_code_and_a_list_of_dossier_ids_name_their_subjects() -> None:
    lookup = registry_pb2.GetBusinessRequest(enterprise_code="0301234567-001")
    coverage = dossier_pb2.GetApologyCoverageResponse(missing_dossier_ids=["d-1", "d-2"])
    assert subjects_of(lookup) == {Subject("enterprise_code", "0301234567-001")}
    assert subjects_of(coverage) == {Subject("dossier_id", "d-1"), Subject("dossier_id", "d-2")}


FULLWIDTH = "".join(chr(0xFF10 + int(digit)) for digit in "079203001234")


@pytest.mark.parametrize(
    ("tax_code", "subject"),
    [
        ("079203001234", Subject("national_id", "079203001234")),  # a citizen's personal tax code
        (" 079203001234 ", Subject("national_id", "079203001234")),
        ("0301234567", Subject("enterprise_code", "0301234567")),
        ("0301234567-001", Subject("enterprise_code", "0301234567-001")),
        (FULLWIDTH, Subject("enterprise_code", FULLWIDTH)),  # digits, but not ASCII ones: no CCCD
    ],
)
def test_a_tax_code_names_a_citizen_when_it_is_a_national_id_and_a_business_otherwise(
    tax_code: str, subject: Subject
) -> None:
    assert tax_code_subject(tax_code) == subject


def test_withheld_fields_are_cleared_in_nested_and_repeated_messages() -> None:
    history = registry_pb2.ListCitizenHistoryResponse(versions=[CITIZEN, CITIZEN])
    visible = {"citydata.v1.Citizen": frozenset({"registry_id", "full_name"})}
    withhold_fields(history, visible.get)
    for version in history.versions:
        assert (version.registry_id, version.full_name) == ("r-1", "Trần Thị Bình")
        assert version.phone == "" and version.national_id == "" and not version.HasField("address")


def test_fields_the_gateway_does_not_know_yet_are_dropped_from_personal_messages() -> None:
    # A newer registry adds field 99 to Citizen; nobody has classified it, so nobody sees it.
    unknown_field = bytes([0x9A, 0x06, 0x03]) + b"Kin"  # field 99, length-delimited, "Kin"
    citizen = registry_pb2.Citizen.FromString(CITIZEN.SerializeToString() + unknown_field)
    response = registry_pb2.GetCitizenResponse(citizen=citizen)
    withhold_fields(response, {"citydata.v1.Citizen": frozenset({"registry_id"})}.get)
    assert registry_pb2.GetCitizenResponse.FromString(response.SerializeToString()).citizen == registry_pb2.Citizen(
        registry_id="r-1"
    )
    assert b"Kin" not in response.SerializeToString()
