"""The access policy's rules (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kit.agencies import directory
from kit.errors import PermissionDenied
from services.gateway.api.policy_file import load_policy
from services.gateway.domain.policy import PolicyError, parse_policy

REPO = Path(__file__).resolve().parents[3]


def document(**agency: Any) -> dict[str, Any]:
    return {
        "purposes": {"CIVIL_STATUS": "civil status", "PUBLIC_SERVICE": "public service"},
        "field_groups": {
            "citydata.v1.Citizen": {
                "unrestricted": ["registry_id"],
                "identity": ["full_name"],
                "contact": ["phone", "email"],
            }
        },
        "agencies": {"STP": {"rpcs": ["citydata.v1.RegistryService/GetCitizen"], **agency}},
    }


def test_an_agency_may_call_only_what_its_grant_lists() -> None:
    policy = parse_policy(document())
    assert policy.authorize("STP", "citydata.v1.RegistryService/GetCitizen").code == "STP"
    with pytest.raises(PermissionDenied) as denied:
        policy.authorize("STP", "citydata.v1.RegistryService/UpdateCitizen")
    assert denied.value.missing_right == "citydata.v1.RegistryService/UpdateCitizen"
    with pytest.raises(PermissionDenied):
        policy.authorize("UNKNOWN", "citydata.v1.RegistryService/GetCitizen")


def test_a_service_wildcard_grants_every_rpc_of_that_service_only() -> None:
    policy = parse_policy(document(rpcs=["citydata.v1.RegistryService/*"]))
    policy.authorize("STP", "citydata.v1.RegistryService/ImportCitizens")
    with pytest.raises(PermissionDenied):
        policy.authorize("STP", "citydata.v1.DossierService/GetDossier")


def test_purposes_must_be_declared_known_and_allowed_for_the_agency() -> None:
    policy = parse_policy(document(purposes=["CIVIL_STATUS"]))
    grant = policy.agencies["STP"]
    assert policy.check_purpose(grant, "CIVIL_STATUS") == "CIVIL_STATUS"
    rights = []
    for purpose in ("", "PUBLIC_SERVICE", "MARKETING"):
        with pytest.raises(PermissionDenied) as denied:
            policy.check_purpose(grant, purpose)
        rights.append(denied.value.missing_right)
    assert rights == ["purpose", "purpose:PUBLIC_SERVICE", "purpose:MARKETING"]


def test_an_agency_sees_unrestricted_fields_plus_its_groups_and_nothing_unclassified() -> None:
    policy = parse_policy(document(field_groups=["identity"]))
    grant = policy.agencies["STP"]
    assert policy.visible_fields(grant, "citydata.v1.Citizen") == {"registry_id", "full_name"}
    assert policy.visible_fields(grant, "citydata.v1.Business") is None
    assert policy.withheld_groups(grant) == ["contact"]


def test_the_withheld_groups_of_a_response_are_those_of_the_types_it_holds() -> None:
    doc = document(field_groups=["identity"])
    doc["field_groups"]["citydata.v1.PetitionSender"] = {"unrestricted": ["kind"], "sender_contact": ["contact"]}
    policy = parse_policy(doc)
    grant = policy.agencies["STP"]
    assert policy.withheld_groups(grant) == ["contact", "sender_contact"]  # every classified type
    assert policy.withheld_groups(grant, ["citydata.v1.Citizen"]) == ["contact"]
    assert policy.withheld_groups(grant, ["citydata.v1.PetitionSender"]) == ["sender_contact"]


@pytest.mark.parametrize(
    ("agency", "problem"),
    [
        ({"field_groups": ["medical"]}, "unknown group"),
        ({"purposes": ["MARKETING"]}, "not in [purposes]"),
        ({"rpcs": ["/citydata.v1.RegistryService/GetCitizen"]}, "package.Service/Method"),
        ({"rate_per_second": 0}, "rate_per_second"),
        ({"burst": 0.5}, "burst"),
        ({"rpc": []}, "unknown key"),
    ],
)
def test_a_malformed_policy_is_rejected_with_the_reason(agency: dict[str, Any], problem: str) -> None:
    with pytest.raises(PolicyError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(document(**agency))


def test_a_field_in_two_groups_is_rejected() -> None:
    doc = document()
    doc["field_groups"]["citydata.v1.Citizen"]["contact"].append("full_name")
    with pytest.raises(PolicyError, match="full_name"):
        parse_policy(doc)


def test_the_example_policy_shipped_in_deploy_is_valid() -> None:
    policy = load_policy(REPO / "deploy" / "gateway" / "policy.toml")
    assert "STP" in policy.agencies
    assert policy.visible_fields(policy.agencies["CDVC"], "citydata.v1.Citizen") == {
        "registry_id",
        "version",
        "create_time",
        "update_time",
    }


def test_a_field_group_naming_a_field_the_proto_lacks_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[field_groups."citydata.v1.Citizen"]\ncontact = ["phone", "fax"]\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="fax"):
        load_policy(path)


def test_a_grant_to_an_agency_missing_from_the_directory_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[agencies.SO-TU-PHAP]\nrpcs = []\n[agencies.STP]\nrpcs = []\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="SO-TU-PHAP: not in the agency directory"):
        load_policy(path)


def test_every_agency_of_the_shipped_policies_is_in_the_directory() -> None:
    for path in (
        REPO / "deploy" / "gateway" / "policy.toml",
        REPO / "deploy" / "k8s" / "base" / "files" / "policy.toml",
    ):
        assert directory().unknown(load_policy(path).agencies) == []
