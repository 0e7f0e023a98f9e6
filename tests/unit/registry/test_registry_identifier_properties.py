"""Property tests: the identifier parsers agree with how the numbers are built."""

from datetime import date

from hypothesis import assume, given
from hypothesis import strategies as st

from services.registry.domain import (
    PROVINCES,
    Gender,
    build_national_id,
    enterprise_check_digit,
    parse_enterprise_code,
    parse_national_id,
    validate_national_id,
)

provinces = st.sampled_from(sorted(PROVINCES))
genders = st.sampled_from(list(Gender))
birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
serials = st.text(alphabet="0123456789", min_size=6, max_size=6)
digits = st.sampled_from("0123456789")


@given(provinces, genders, birth_dates, serials)
def test_a_built_national_id_validates(province: str, gender: Gender, born: date, serial: str) -> None:
    national_id = build_national_id(province, gender, born.year, serial)
    assert validate_national_id(national_id, born, gender).value == national_id
    parsed = parse_national_id(national_id).unwrap()
    assert (parsed.province_code, parsed.gender, parsed.birth_year, parsed.serial) == (
        province,
        gender,
        born.year,
        serial,
    )


@given(provinces, genders, birth_dates, serials, st.integers(3, 5), digits)
def test_changing_a_birth_digit_breaks_the_national_id(
    province: str,
    gender: Gender,
    born: date,
    serial: str,
    position: int,
    new_digit: str,
) -> None:
    national_id = build_national_id(province, gender, born.year, serial)
    assume(national_id[position] != new_digit)
    altered = national_id[:position] + new_digit + national_id[position + 1 :]
    assert not validate_national_id(altered, born, gender).ok


@given(provinces, genders, birth_dates, serials, st.integers(0, 2), digits)
def test_changing_a_province_digit_to_an_unlisted_code_breaks_the_national_id(
    province: str,
    gender: Gender,
    born: date,
    serial: str,
    position: int,
    new_digit: str,
) -> None:
    national_id = build_national_id(province, gender, born.year, serial)
    altered = national_id[:position] + new_digit + national_id[position + 1 :]
    assume(altered[:3] not in PROVINCES)
    assert not validate_national_id(altered, born, gender).ok


@given(st.text(), st.one_of(st.none(), birth_dates), st.one_of(st.none(), genders))
def test_any_text_gives_a_value_or_violations_never_an_exception(
    raw: str, born: date | None, gender: Gender | None
) -> None:
    checked = validate_national_id(raw, born, gender)
    assert (checked.value is None) == bool(checked.violations)
    assert all(v.field == "national_id" for v in checked.violations)


nine_digit_heads = st.text(alphabet="0123456789", min_size=9, max_size=9).filter(
    lambda head: head[2:] != "0000000" and enterprise_check_digit(head) is not None
)
branches = st.integers(1, 999).map(lambda n: f"{n:03d}")


def _with_check_digit(head: str) -> str:
    digit = enterprise_check_digit(head)
    assert digit is not None
    return head + digit


@given(nine_digit_heads)
def test_a_code_with_its_check_digit_is_accepted(head: str) -> None:
    code = _with_check_digit(head)
    assert parse_enterprise_code(code).value == code


@given(nine_digit_heads, branches)
def test_a_branch_code_is_accepted_with_or_without_the_dash(head: str, branch: str) -> None:
    code = _with_check_digit(head)
    assert parse_enterprise_code(f"{code}-{branch}").value == f"{code}-{branch}"
    assert parse_enterprise_code(code + branch).value == f"{code}-{branch}"


@given(nine_digit_heads, digits)
def test_any_other_check_digit_is_refused(head: str, wrong: str) -> None:
    assume(wrong != enterprise_check_digit(head))
    checked = parse_enterprise_code(head + wrong)
    assert "check digit" in checked.violations[0].description


@given(nine_digit_heads)
def test_branch_000_is_always_refused(head: str) -> None:
    assert not parse_enterprise_code(_with_check_digit(head) + "-000").ok


@given(st.text())
def test_any_text_is_an_enterprise_code_or_violations_never_an_exception(
    raw: str,
) -> None:
    checked = parse_enterprise_code(raw)
    assert (checked.value is None) == bool(checked.violations)
