import unicodedata

from services.registry.domain import (
    HO_CHI_MINH_CITY,
    PROVINCES,
    is_province_code,
    province_name,
)


def test_the_circular_lists_63_provinces_and_cities() -> None:
    assert len(PROVINCES) == 63


def test_codes_are_three_digits_from_001_to_096() -> None:
    assert all(len(code) == 3 and code.isdigit() for code in PROVINCES)
    assert min(PROVINCES) == "001"
    assert max(PROVINCES) == "096"


def test_well_known_codes_have_their_names() -> None:
    assert HO_CHI_MINH_CITY == "079"
    assert province_name("079") == "Hồ Chí Minh"
    assert province_name("001") == "Hà Nội"
    assert province_name("002") == "Hà Giang"
    assert province_name("004") == "Cao Bằng"
    assert province_name("048") == "Đà Nẵng"
    assert province_name("092") == "Cần Thơ"
    assert province_name("096") == "Cà Mau"


def test_codes_not_on_the_list_are_unknown() -> None:
    for code in ("000", "003", "005", "079 ", "79", "097", "100"):
        assert not is_province_code(code)
        assert province_name(code) is None


def test_names_are_unique_and_stored_nfc() -> None:
    names = list(PROVINCES.values())
    assert len(set(names)) == len(names)
    assert all(unicodedata.is_normalized("NFC", name) for name in names)
