import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from kit.errors import Aborted, InvalidArgument
from services.registry.domain import (
    AddressDraft,
    Citizen,
    CitizenChanges,
    CitizenDraft,
    CitizenRegistered,
    CitizenUpdated,
    Gender,
    new_citizen,
    update_citizen,
)

REGISTRY_ID = "3f2b8c4e-1111-4222-8333-444455556666"
REGISTERED_AT = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
LATER = REGISTERED_AT + timedelta(days=3)


def draft(**overrides: object) -> CitizenDraft:
    base = CitizenDraft(
        national_id="079203012345",
        full_name="  Nguyễn  Văn An ",
        date_of_birth=date(2003, 5, 1),
        gender=Gender.MALE,
        address=AddressDraft("079", "26734", "12 Lê Lợi"),
        phone="090 123 4567",
        email="An@Example.VN",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def registered() -> Citizen:
    return new_citizen(REGISTRY_ID, draft(), REGISTERED_AT)


def violated_fields(error: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [v.field for v in error.value.violations]


def test_a_new_citizen_is_normalised_at_version_one() -> None:
    citizen = registered()
    assert citizen.registry_id == REGISTRY_ID
    assert citizen.full_name == "Nguyễn Văn An"
    assert citizen.phone == "+84901234567"
    assert citizen.email == "An@example.vn"
    assert citizen.address.street == "12 Lê Lợi"
    assert citizen.version == 1
    assert citizen.created_at == citizen.updated_at == REGISTERED_AT
    assert citizen.search_key == "nguyen van an"


def test_timestamps_are_stored_in_utc() -> None:
    saigon = timezone(timedelta(hours=7))
    citizen = new_citizen(REGISTRY_ID, draft(), REGISTERED_AT.astimezone(saigon))
    assert citizen.created_at == REGISTERED_AT
    assert citizen.created_at.utcoffset() == timedelta(0)


def test_citizens_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        registered().full_name = "Trần Văn B"  # type: ignore[misc]


def test_contact_details_are_optional() -> None:
    citizen = new_citizen(REGISTRY_ID, draft(phone=None, email=""), REGISTERED_AT)
    assert citizen.phone is None and citizen.email is None


def test_every_bad_field_is_reported_at_once() -> None:
    bad = CitizenDraft(
        national_id="12345",
        full_name="An 2",
        date_of_birth=date(2030, 1, 1),
        gender=None,
        address=AddressDraft("79", "123", ""),
        phone="12",
        email="nope",
    )
    with pytest.raises(InvalidArgument) as error:
        new_citizen(REGISTRY_ID, bad, REGISTERED_AT)
    assert violated_fields(error) == [
        "national_id",
        "full_name",
        "date_of_birth",
        "gender",
        "address.province_code",
        "address.ward_code",
        "address.street",
        "phone",
        "email",
    ]


def test_national_id_must_agree_with_gender_and_birth_year() -> None:
    with pytest.raises(InvalidArgument) as error:
        new_citizen(REGISTRY_ID, draft(gender=Gender.FEMALE), REGISTERED_AT)
    assert violated_fields(error) == ["national_id"]


def test_a_future_birth_date_is_judged_by_the_date_in_vietnam() -> None:
    # 20:00 UTC on 31 May is already 1 June in Vietnam.
    evening_utc = datetime(2024, 5, 31, 20, 0, tzinfo=UTC)
    baby = draft(national_id="079224000001", date_of_birth=date(2024, 6, 1))
    assert new_citizen(REGISTRY_ID, baby, evening_utc).date_of_birth == date(2024, 6, 1)


def test_a_malformed_registry_id_is_a_bug_not_bad_input() -> None:
    with pytest.raises(ValueError):
        new_citizen("not-a-uuid", draft(), REGISTERED_AT)


def test_update_applies_changes_and_bumps_the_version() -> None:
    current = registered()
    updated = update_citizen(
        current,
        CitizenChanges(
            full_name="Nguyễn Văn  Anh",
            address=AddressDraft("079", "26740", "5 Hai Bà Trưng"),
        ),
        expected_version=1,
        now=LATER,
    )
    assert updated.full_name == "Nguyễn Văn Anh"
    assert updated.address.ward_code == "26740"
    assert updated.phone == current.phone and updated.email == current.email
    assert updated.version == 2
    assert updated.created_at == REGISTERED_AT and updated.updated_at == LATER
    assert current.version == 1  # the old record is untouched


def test_empty_phone_or_email_in_changes_removes_them() -> None:
    updated = update_citizen(registered(), CitizenChanges(phone="", email=""), 1, LATER)
    assert updated.phone is None and updated.email is None


def test_a_stale_version_is_aborted() -> None:
    current = update_citizen(registered(), CitizenChanges(), 1, LATER)
    with pytest.raises(Aborted) as error:
        update_citizen(current, CitizenChanges(full_name="Lê Văn B"), 1, LATER)
    assert "version 2, not 1" in error.value.message


def test_a_stale_version_is_reported_before_bad_fields() -> None:
    with pytest.raises(Aborted):
        update_citizen(registered(), CitizenChanges(full_name=""), 7, LATER)


def test_updates_are_validated_like_registrations() -> None:
    with pytest.raises(InvalidArgument) as error:
        update_citizen(registered(), CitizenChanges(full_name="", phone="123"), 1, LATER)
    assert violated_fields(error) == ["full_name", "phone"]


def test_a_corrected_national_id_is_accepted_when_it_agrees() -> None:
    updated = update_citizen(registered(), CitizenChanges(national_id="001203999999"), 1, LATER)
    assert updated.national_id == "001203999999"


def test_a_corrected_birth_date_must_still_agree_with_the_national_id() -> None:
    with pytest.raises(InvalidArgument) as error:
        update_citizen(registered(), CitizenChanges(date_of_birth=date(2002, 5, 1)), 1, LATER)
    assert violated_fields(error) == ["national_id"]


def test_birth_date_and_national_id_can_be_corrected_together() -> None:
    changes = CitizenChanges(national_id="079202012345", date_of_birth=date(2002, 5, 1))
    updated = update_citizen(registered(), changes, 1, LATER)
    assert (updated.national_id, updated.date_of_birth) == (
        "079202012345",
        date(2002, 5, 1),
    )


def test_events_carry_the_whole_record() -> None:
    citizen = registered()
    assert CitizenRegistered(citizen).citizen.full_name == "Nguyễn Văn An"
    updated = update_citizen(citizen, CitizenChanges(email="an@hcmc.gov.vn"), 1, LATER)
    assert CitizenUpdated(updated).citizen.email == "an@hcmc.gov.vn"
