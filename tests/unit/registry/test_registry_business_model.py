import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from kit.errors import Aborted, FailedPrecondition, InvalidArgument
from services.registry.domain import (
    AddressDraft,
    Business,
    BusinessChanges,
    BusinessDraft,
    BusinessRegistered,
    BusinessStatus,
    BusinessUpdated,
    check_status_change,
    new_business,
    update_business,
)

REGISTRY_ID = "9a1c2d3e-aaaa-4bbb-8ccc-ddddeeeeffff"
REPRESENTATIVE_ID = "3f2b8c4e-1111-4222-8333-444455556666"
REGISTERED_AT = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
LATER = REGISTERED_AT + timedelta(hours=5)

ACTIVE, SUSPENDED, DISSOLVED = (
    BusinessStatus.ACTIVE,
    BusinessStatus.SUSPENDED,
    BusinessStatus.DISSOLVED,
)


def draft(**overrides: object) -> BusinessDraft:
    base = BusinessDraft(
        enterprise_code="0314409058",
        name="Công ty  TNHH Thương mại 3 Miền",
        legal_representative_id=REPRESENTATIVE_ID.upper(),
        address=AddressDraft("079", "26734", "12 Lê Lợi"),
        business_lines=["4610", "46101"],
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def registered() -> Business:
    return new_business(REGISTRY_ID, draft(), REGISTERED_AT)


def with_status(status: BusinessStatus) -> Business:
    return dataclasses.replace(registered(), status=status)


def test_a_new_business_is_active_normalised_at_version_one() -> None:
    business = registered()
    assert business.status is ACTIVE
    assert business.name == "Công ty TNHH Thương mại 3 Miền"
    assert business.legal_representative_id == REPRESENTATIVE_ID
    assert business.business_lines == ("4610", "46101")
    assert business.version == 1
    assert business.created_at == business.updated_at == REGISTERED_AT
    assert business.search_key == "cong ty tnhh thuong mai 3 mien"


def test_a_branch_code_is_stored_with_its_dash() -> None:
    business = new_business(REGISTRY_ID, draft(enterprise_code="0314409058002"), REGISTERED_AT)
    assert business.enterprise_code == "0314409058-002"


def test_every_bad_field_is_reported_at_once() -> None:
    bad = BusinessDraft(
        enterprise_code="0314409059",
        name=" ",
        legal_representative_id="citizen 42",
        address=AddressDraft("079", "26734", ""),
        business_lines=["4610", "12"],
    )
    with pytest.raises(InvalidArgument) as error:
        new_business(REGISTRY_ID, bad, REGISTERED_AT)
    assert [v.field for v in error.value.violations] == [
        "enterprise_code",
        "name",
        "legal_representative_id",
        "address.street",
        "business_lines[1]",
    ]


def test_update_applies_changes_and_bumps_the_version() -> None:
    updated = update_business(
        registered(),
        BusinessChanges(name="3 Miền JSC", business_lines=["6201"]),
        1,
        LATER,
    )
    assert (updated.name, updated.business_lines) == ("3 Miền JSC", ("6201",))
    assert updated.enterprise_code == "0314409058"
    assert (updated.version, updated.created_at, updated.updated_at) == (
        2,
        REGISTERED_AT,
        LATER,
    )


def test_a_stale_version_is_aborted() -> None:
    with pytest.raises(Aborted):
        update_business(registered(), BusinessChanges(name="X"), 2, LATER)


def test_an_empty_business_line_list_is_refused_on_update() -> None:
    with pytest.raises(InvalidArgument) as error:
        update_business(registered(), BusinessChanges(business_lines=[]), 1, LATER)
    assert [v.field for v in error.value.violations] == ["business_lines"]


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (ACTIVE, SUSPENDED),
        (SUSPENDED, ACTIVE),
        (ACTIVE, DISSOLVED),
        (SUSPENDED, DISSOLVED),
        (ACTIVE, ACTIVE),
        (SUSPENDED, SUSPENDED),
    ],
)
def test_allowed_status_changes(start: BusinessStatus, target: BusinessStatus) -> None:
    updated = update_business(with_status(start), BusinessChanges(status=target), 1, LATER)
    assert updated.status is target


@pytest.mark.parametrize("target", [ACTIVE, SUSPENDED, DISSOLVED])
def test_a_dissolved_business_cannot_change_status(target: BusinessStatus) -> None:
    with pytest.raises(FailedPrecondition) as error:
        update_business(with_status(DISSOLVED), BusinessChanges(status=target), 1, LATER)
    assert error.value.reason == "BUSINESS_DISSOLVED"


def test_a_dissolved_business_record_is_closed_to_other_edits() -> None:
    with pytest.raises(FailedPrecondition):
        update_business(with_status(DISSOLVED), BusinessChanges(name="New name"), 1, LATER)


def test_status_change_rule_on_its_own() -> None:
    check_status_change(ACTIVE, SUSPENDED)
    with pytest.raises(FailedPrecondition) as error:
        check_status_change(DISSOLVED, ACTIVE)
    assert error.value.reason == "INVALID_STATUS_TRANSITION"


def test_events_carry_the_whole_record() -> None:
    business = registered()
    assert BusinessRegistered(business).business == business
    suspended = update_business(business, BusinessChanges(status=SUSPENDED), 1, LATER)
    assert BusinessUpdated(suspended).business.status is SUSPENDED
