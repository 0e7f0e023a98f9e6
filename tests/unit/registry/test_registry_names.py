import unicodedata

import pytest

from services.registry.domain import (
    normalise_text,
    parse_business_name,
    parse_citizen_name,
    parse_street,
)

NFD_NGUYEN_VAN_AN = unicodedata.normalize("NFD", "Nguyễn Văn An")


def test_names_are_stored_nfc() -> None:
    stored = parse_citizen_name(NFD_NGUYEN_VAN_AN).value
    assert stored == "Nguyễn Văn An"
    assert stored is not None and unicodedata.is_normalized("NFC", stored)


def test_zero_width_characters_are_removed() -> None:
    raw = "\ufeffNguy\u200bễn\u200c Văn\u200d An"
    assert parse_citizen_name(raw).value == "Nguyễn Văn An"


def test_a_zero_width_character_inside_a_letter_does_not_stop_composition() -> None:
    raw = "Nguye\u0302\u200b\u0303n"  # e + circumflex + ZWSP + tilde
    assert normalise_text(raw) == "Nguyễn"


def test_whitespace_is_collapsed_and_trimmed() -> None:
    assert parse_citizen_name("  Trần \t Thị\u00a0\u00a0Bích  ").value == "Trần Thị Bích"


def test_capitalisation_is_kept_as_typed() -> None:
    assert parse_citizen_name("lê văn tám").value == "lê văn tám"


@pytest.mark.parametrize("raw", ["", "   ", "\u200b\u200b", "\ufeff"])
def test_empty_names_are_refused(raw: str) -> None:
    checked = parse_citizen_name(raw)
    assert [(v.field, v.description) for v in checked.violations] == [("full_name", "full name is required")]


@pytest.mark.parametrize("raw", ["Phạm Văn 2", "Đỗ Thị ٣"])
def test_citizen_names_with_digits_are_refused(raw: str) -> None:
    assert "digits" in parse_citizen_name(raw).violations[0].description


@pytest.mark.parametrize("raw", ["Hoàng\x00 An", "Huỳnh\x07An", "Đặng\u202eAn", "Lê\u00adAn"])
def test_names_with_control_or_invisible_characters_are_refused(raw: str) -> None:
    assert "control" in parse_citizen_name(raw).violations[0].description


def test_citizen_name_length_is_counted_after_normalising() -> None:
    hundred = "A" * 100
    assert parse_citizen_name(hundred).ok
    assert parse_citizen_name(" " + hundred + "\u200b ").ok
    assert "limit is 100" in parse_citizen_name(hundred + "A").violations[0].description
    # NFD input is longer in code points than what is stored.
    assert parse_citizen_name(unicodedata.normalize("NFD", "ễ" * 100)).ok


def test_business_names_may_contain_digits() -> None:
    name = "Công ty TNHH Thương mại 3 Miền"
    assert parse_business_name(name).value == name


def test_business_name_limit_is_300() -> None:
    assert parse_business_name("B" * 300).ok
    checked = parse_business_name("B" * 301)
    assert [v.field for v in checked.violations] == ["name"]


def test_business_name_is_required() -> None:
    assert not parse_business_name(" \u200d ").ok


def test_street_lines_are_normalised_and_limited() -> None:
    assert parse_street(" 12  Lê   Lợi ").value == "12 Lê Lợi"
    assert parse_street("x" * 200).ok
    assert [v.field for v in parse_street("x" * 201).violations] == ["address.street"]
    assert [v.field for v in parse_street("").violations] == ["address.street"]
