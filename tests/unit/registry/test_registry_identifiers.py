from datetime import date

import pytest

from kit.errors import FieldViolation
from services.registry.domain import (
    Gender,
    NationalId,
    build_national_id,
    enterprise_check_digit,
    parse_business_lines,
    parse_enterprise_code,
    parse_national_id,
    parse_registry_id,
    validate_national_id,
)

# A man born 2003 whose birth was registered in Ho Chi Minh City.
HCMC_MAN_2003 = "079203012345"


# --- National id --------------------------------------------------------------------


def test_national_id_parts_follow_the_circular() -> None:
    parsed = parse_national_id(HCMC_MAN_2003).unwrap()
    assert parsed.province_code == "079"
    assert parsed.gender is Gender.MALE
    assert parsed.birth_year == 2003
    assert parsed.serial == "012345"


@pytest.mark.parametrize(
    ("century_digit", "gender", "century_start"),
    [
        ("0", Gender.MALE, 1900),
        ("1", Gender.FEMALE, 1900),
        ("2", Gender.MALE, 2000),
        ("3", Gender.FEMALE, 2000),
        ("4", Gender.MALE, 2100),
        ("5", Gender.FEMALE, 2100),
        ("6", Gender.MALE, 2200),
        ("7", Gender.FEMALE, 2200),
        ("8", Gender.MALE, 2300),
        ("9", Gender.FEMALE, 2300),
    ],
)
def test_digit_four_encodes_century_and_gender(century_digit: str, gender: Gender, century_start: int) -> None:
    parsed = NationalId(f"001{century_digit}85000001")
    assert parsed.gender is gender
    assert parsed.birth_year == century_start + 85


def test_build_national_id_is_the_inverse_of_parsing() -> None:
    assert build_national_id("079", Gender.MALE, 2003, "012345") == HCMC_MAN_2003
    assert build_national_id("001", Gender.FEMALE, 1968, "000001") == "001168000001"


def test_build_national_id_refuses_years_the_card_cannot_encode() -> None:
    with pytest.raises(ValueError):
        build_national_id("079", Gender.MALE, 1899, "000001")


def test_spaces_between_digit_groups_are_ignored() -> None:
    assert parse_national_id(" 079 203 012345 ").unwrap().digits == HCMC_MAN_2003


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "07920301234",
        "0792030123456",
        "07920301234a",
        "079-203-012345",
        "０７９２０３０１２３４５",  # noqa: RUF001 (full-width digits on purpose)
    ],
)
def test_national_id_must_be_twelve_ascii_digits(raw: str) -> None:
    checked = parse_national_id(raw)
    assert checked.value is None
    assert checked.violations == (FieldViolation("national_id", "a national id (CCCD) is exactly 12 digits"),)


@pytest.mark.parametrize("province", ["000", "003", "097", "999"])
def test_national_id_province_must_be_on_the_list(province: str) -> None:
    checked = parse_national_id(province + "203012345")
    assert not checked.ok
    assert "province code" in checked.violations[0].description


def test_violations_use_the_given_field_path() -> None:
    checked = parse_national_id("x", field="legal_representative.national_id")
    assert checked.violations[0].field == "legal_representative.national_id"


def test_national_id_agreeing_with_the_person_is_returned_canonical() -> None:
    checked = validate_national_id("079 203 012345", date(2003, 5, 1), Gender.MALE)
    assert checked.value == HCMC_MAN_2003


def test_gender_disagreeing_with_digit_four_is_refused() -> None:
    checked = validate_national_id(HCMC_MAN_2003, date(2003, 5, 1), Gender.FEMALE)
    assert [v.field for v in checked.violations] == ["national_id"]
    assert "marks a male" in checked.violations[0].description


def test_birth_year_disagreeing_with_digits_five_six_is_refused() -> None:
    checked = validate_national_id(HCMC_MAN_2003, date(2004, 1, 1), Gender.MALE)
    assert "born in 2003" in checked.violations[0].description


def test_century_disagreeing_with_digit_four_is_refused() -> None:
    # Same last two digits, wrong century.
    checked = validate_national_id(HCMC_MAN_2003, date(1903, 1, 1), Gender.MALE)
    assert "born in 2003" in checked.violations[0].description


def test_every_disagreement_is_reported_in_one_violation() -> None:
    checked = validate_national_id(HCMC_MAN_2003, date(1990, 1, 1), Gender.FEMALE)
    assert len(checked.violations) == 1
    description = checked.violations[0].description
    assert "marks a male" in description and "born in 2003" in description


def test_missing_birth_date_and_gender_are_left_to_their_own_fields() -> None:
    assert validate_national_id(HCMC_MAN_2003, None, None).value == HCMC_MAN_2003


# --- Enterprise code ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("0100233488", "0100233488"),
        (" 0100112437 ", "0100112437"),
        ("0314409058-002", "0314409058-002"),
        ("0314409058002", "0314409058-002"),
        ("0312687878 - 001", "0312687878-001"),
        ("0312687878 001", "0312687878-001"),
    ],
)
def test_enterprise_codes_are_stored_canonical(raw: str, canonical: str) -> None:
    assert parse_enterprise_code(raw).value == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "010023348",
        "01002334888",
        "01.00.233.488",
        "0100233488-01",
        "0100233488-0001",
        "abc",
    ],
)
def test_enterprise_code_shape_is_enforced(raw: str) -> None:
    checked = parse_enterprise_code(raw)
    assert [v.field for v in checked.violations] == ["enterprise_code"]
    assert "10 digits" in checked.violations[0].description


def test_enterprise_code_with_a_wrong_check_digit_is_refused() -> None:
    checked = parse_enterprise_code("0100233480")
    assert "check digit" in checked.violations[0].description


def test_branch_000_is_refused() -> None:
    checked = parse_enterprise_code("0314409058-000")
    assert "not 000" in checked.violations[0].description


def test_all_zero_sequence_is_refused() -> None:
    head = "01" + "0000000"
    digit = enterprise_check_digit(head)
    assert digit is not None
    checked = parse_enterprise_code(head + digit)
    assert "cannot all be zero" in checked.violations[0].description


def test_check_digit_matches_known_codes() -> None:
    assert enterprise_check_digit("010023348") == "8"
    assert enterprise_check_digit("031440905") == "8"


def test_prefixes_without_a_possible_check_digit_are_reported() -> None:
    # When the weighted sum of the nine digits is a multiple of 11 no tenth digit fits.
    prefix = next(f"01{n:07d}" for n in range(1, 10_000) if enterprise_check_digit(f"01{n:07d}") is None)
    assert all(not parse_enterprise_code(prefix + d).ok for d in "0123456789")


# --- Business lines -----------------------------------------------------------------


def test_business_lines_keep_their_order() -> None:
    assert parse_business_lines(["4610", " 46101 ", "6201"]).value == (
        "4610",
        "46101",
        "6201",
    )


def test_business_lines_are_required() -> None:
    checked = parse_business_lines([])
    assert [v.field for v in checked.violations] == ["business_lines"]


def test_each_bad_business_line_is_named_by_index() -> None:
    checked = parse_business_lines(["4610", "461", "A0111", "462010", "4610"])
    assert [v.field for v in checked.violations] == [
        "business_lines[1]",
        "business_lines[2]",
        "business_lines[3]",
        "business_lines[4]",
    ]
    assert "more than once" in checked.violations[-1].description


# --- Registry ids -------------------------------------------------------------------


def test_registry_ids_are_canonical_uuids() -> None:
    raw = "3F2B8C4E11114222833344445555666A"
    assert parse_registry_id(raw, "legal_representative_id").value == ("3f2b8c4e-1111-4222-8333-44445555666a")


def test_non_uuid_registry_id_is_refused() -> None:
    checked = parse_registry_id("citizen-42", "legal_representative_id")
    assert [v.field for v in checked.violations] == ["legal_representative_id"]
