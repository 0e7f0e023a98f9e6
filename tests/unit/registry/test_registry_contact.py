import pytest

from services.registry.domain import parse_email, parse_phone


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0901234567", "+84901234567"),
        ("090 123 4567", "+84901234567"),
        ("+84 90 123 4567", "+84901234567"),
        ("+84901234567", "+84901234567"),
        ("0312.345.678", "+84312345678"),
        ("056-123-4567", "+84561234567"),
        ("0701234567", "+84701234567"),
        ("0812345678", "+84812345678"),
        ("(028) 3829 1234", "+842838291234"),
        ("+84 28 3829 1234", "+842838291234"),
        ("0243 826 1234", "+842438261234"),
    ],
)
def test_vietnamese_numbers_are_stored_as_e164(raw: str, e164: str) -> None:
    assert parse_phone(raw).value == e164


@pytest.mark.parametrize(
    "raw",
    [
        "0123456789",  # 01x prefixes were retired in 2018
        "0401234567",
        "0601234567",
        "090123456",  # one digit short
        "09012345678",  # one digit long for a mobile
        "0283829123",  # one digit short for a landline
        "84901234567",
        "+1 202 555 0100",
        "+84901234567x",
        "abc",
    ],
)
def test_other_numbers_are_refused(raw: str) -> None:
    checked = parse_phone(raw)
    assert [v.field for v in checked.violations] == ["phone"]


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_phone_is_optional(raw: str | None) -> None:
    checked = parse_phone(raw)
    assert checked.ok and checked.value is None


def test_email_domain_is_lower_cased_and_the_mailbox_kept() -> None:
    assert parse_email("  An.Nguyen@HCMC.Gov.VN ").value == "An.Nguyen@hcmc.gov.vn"


@pytest.mark.parametrize(
    "raw",
    [
        "an@example.vn",
        "an+tax@mail.example.com.vn",
        "an@xn--bcher-kva.vn",
        "an@bộ-tài-chính.vn",
    ],
)
def test_plausible_emails_are_accepted(raw: str) -> None:
    assert parse_email(raw).ok


@pytest.mark.parametrize(
    "raw",
    [
        "an.example.vn",
        "an@@example.vn",
        "an@b@example.vn",
        "@example.vn",
        "an@localhost",
        "an@example.",
        "an@.example.vn",
        "an@example..vn",
        "an@-example.vn",
        "an@example-.vn",
        "an van@example.vn",
        "an@exa mple.vn",
        "a" * 65 + "@example.vn",
        "an@" + "a" * 64 + ".vn",
        "an@" + ".".join(["a" * 60] * 5) + ".vn",  # 310 characters in all
    ],
)
def test_implausible_emails_are_refused(raw: str) -> None:
    checked = parse_email(raw)
    assert [v.field for v in checked.violations] == ["email"]


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_email_is_optional(raw: str | None) -> None:
    checked = parse_email(raw)
    assert checked.ok and checked.value is None
