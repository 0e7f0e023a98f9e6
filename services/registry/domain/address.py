"""The Address value object shared by citizens and businesses."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kit.errors import FieldViolation
from services.registry.domain.checked import Checked, bad, good
from services.registry.domain.names import parse_street
from services.registry.domain.provinces import is_province_code, province_name

_WARD_CODE = re.compile(r"[0-9]{5}")


@dataclass(frozen=True)
class AddressDraft:
    """An address as the caller typed it."""

    province_code: str
    ward_code: str
    street: str


@dataclass(frozen=True)
class Address:
    """A validated address: a province code of Circular 07/2016, a 5-digit ward code, a street line."""

    province_code: str
    ward_code: str
    street: str

    @property
    def province_name(self) -> str:
        return province_name(self.province_code) or self.province_code

    def as_draft(self) -> AddressDraft:
        return AddressDraft(self.province_code, self.ward_code, self.street)


def parse_province_code(raw: str, field: str = "address.province_code") -> Checked[str]:
    code = raw.strip()
    if not is_province_code(code):
        return bad(field, f"{code!r} is not a 3-digit province code (Ho Chi Minh City is 079)")
    return good(code)


def parse_ward_code(raw: str, field: str = "address.ward_code") -> Checked[str]:
    code = raw.strip()
    if not _WARD_CODE.fullmatch(code):
        return bad(field, "a ward code is 5 digits")
    return good(code)


def parse_address(draft: AddressDraft, field: str = "address") -> Checked[Address]:
    """Every part checked; violations are named `<field>.province_code` and so on."""
    province = parse_province_code(draft.province_code, f"{field}.province_code")
    ward = parse_ward_code(draft.ward_code, f"{field}.ward_code")
    street = parse_street(draft.street, f"{field}.street")
    violations: tuple[FieldViolation, ...] = province.violations + ward.violations + street.violations
    if violations:
        return Checked(None, violations)
    return good(Address(province.unwrap(), ward.unwrap(), street.unwrap()))
