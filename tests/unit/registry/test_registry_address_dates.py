from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from services.registry.domain import (
    AddressDraft,
    check_date_of_birth,
    parse_address,
    vietnam_today,
)


def test_a_valid_address_is_normalised() -> None:
    address = parse_address(AddressDraft(" 079 ", "26734", " 12  Lê Lợi, Bến Nghé ")).unwrap()
    assert (address.province_code, address.ward_code, address.street) == (
        "079",
        "26734",
        "12 Lê Lợi, Bến Nghé",
    )
    assert address.province_name == "Hồ Chí Minh"


def test_every_bad_address_part_is_reported_with_its_path() -> None:
    checked = parse_address(AddressDraft("79", "2673", ""))
    assert [v.field for v in checked.violations] == [
        "address.province_code",
        "address.ward_code",
        "address.street",
    ]


@pytest.mark.parametrize("province", ["", "79", "0079", "097", "HCM"])
def test_province_must_be_a_listed_three_digit_code(province: str) -> None:
    assert not parse_address(AddressDraft(province, "26734", "12 Lê Lợi")).ok


@pytest.mark.parametrize("ward", ["", "2673", "267345", "2673a", "２６７３４"])  # noqa: RUF001 (full-width digits on purpose)
def test_ward_code_is_five_digits(ward: str) -> None:
    assert not parse_address(AddressDraft("079", ward, "12 Lê Lợi")).ok


TODAY = date(2024, 6, 1)


@pytest.mark.parametrize("born", [date(1900, 1, 1), date(1975, 4, 30), TODAY])
def test_birth_dates_from_1900_to_today_are_accepted(born: date) -> None:
    assert check_date_of_birth(born, TODAY).value == born


def test_birth_date_in_the_future_is_refused() -> None:
    checked = check_date_of_birth(TODAY + timedelta(days=1), TODAY)
    assert [v.field for v in checked.violations] == ["date_of_birth"]
    assert "future" in checked.violations[0].description


def test_birth_date_before_1900_is_refused() -> None:
    assert "1900-01-01" in check_date_of_birth(date(1899, 12, 31), TODAY).violations[0].description


def test_birth_date_is_required() -> None:
    assert check_date_of_birth(None, TODAY).violations[0].description == "date of birth is required"


def test_today_is_the_date_in_vietnam() -> None:
    # 18:30 UTC on 31 May is 01:30 on 1 June in Ho Chi Minh City.
    assert vietnam_today(datetime(2024, 5, 31, 18, 30, tzinfo=UTC)) == date(2024, 6, 1)
    assert vietnam_today(datetime(2024, 5, 31, 16, 59, tzinfo=UTC)) == date(2024, 5, 31)
    new_york = timezone(timedelta(hours=-4))
    assert vietnam_today(datetime(2024, 5, 31, 14, 30, tzinfo=new_york)) == date(2024, 6, 1)


def test_naive_timestamps_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        vietnam_today(datetime(2024, 6, 1))
