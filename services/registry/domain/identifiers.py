"""Identifiers the registry accepts: CCCD national ids, enterprise (tax) codes, VSIC codes, UUIDs.

Every parser returns a `Checked` holding the canonical form or the violations, each
naming the request field it was given; none of them raises on bad input.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError
from stdnum.vn import mst

from kit.errors import FieldViolation
from services.registry.domain.checked import Checked, bad, good
from services.registry.domain.enums import Gender
from services.registry.domain.provinces import is_province_code

# --- National id (CCCD, Circular 07/2016/TT-BCA art. 7) -------------------------------
#
# 12 digits: PPP C YY NNNNNN
#   PPP    province code of the birth registration (provinces.PROVINCES)
#   C      century of birth and gender: 20th century 0 male / 1 female, 21st 2/3,
#          22nd 4/5, 23rd 6/7, 24th 8/9
#   YY     last two digits of the year of birth
#   NNNNNN serial number

_NATIONAL_ID = re.compile(r"[0-9]{12}")
_FIRST_CENTURY = 1900  # the century digit pair 0/1 stands for 1900-1999


@dataclass(frozen=True)
class NationalId:
    """A structurally valid CCCD number, split into the parts the circular defines."""

    digits: str

    @property
    def province_code(self) -> str:
        return self.digits[:3]

    @property
    def gender(self) -> Gender:
        return Gender.MALE if int(self.digits[3]) % 2 == 0 else Gender.FEMALE

    @property
    def birth_year(self) -> int:
        century_start = _FIRST_CENTURY + 100 * (int(self.digits[3]) // 2)
        return century_start + int(self.digits[4:6])

    @property
    def serial(self) -> str:
        return self.digits[6:]


def build_national_id(province_code: str, gender: Gender, birth_year: int, serial: str) -> str:
    """The CCCD number for these parts; the inverse of `NationalId`'s accessors."""
    century_index, year_in_century = divmod(birth_year - _FIRST_CENTURY, 100)
    if not 0 <= century_index <= 4:
        raise ValueError(f"a CCCD cannot encode the birth year {birth_year}")
    century_digit = 2 * century_index + (0 if gender is Gender.MALE else 1)
    return f"{province_code}{century_digit}{year_in_century:02d}{serial}"


def parse_national_id(raw: str, field: str = "national_id") -> Checked[NationalId]:
    """Shape and province check; spaces typed between digit groups are ignored."""
    digits = "".join(raw.split())
    if not _NATIONAL_ID.fullmatch(digits):
        return bad(field, "a national id (CCCD) is exactly 12 digits")
    if not is_province_code(digits[:3]):
        return bad(
            field,
            f"digits 1-3 ({digits[:3]}) are not a province code of Circular 07/2016/TT-BCA",
        )
    return good(NationalId(digits))


def national_id_mismatches(national_id: NationalId, date_of_birth: date | None, gender: Gender | None) -> list[str]:
    """How the number disagrees with the recorded birth date and gender; empty when it agrees.

    A missing birth date or gender is reported by its own field, so it is skipped here.
    """
    problems: list[str] = []
    if gender is not None and national_id.gender is not gender:
        digit = national_id.digits[3]
        problems.append(f"digit 4 ({digit}) marks a {national_id.gender}, but gender is {gender}")
    if date_of_birth is not None and national_id.birth_year != date_of_birth.year:
        problems.append(
            f"digits 4-6 say born in {national_id.birth_year}, but the date of birth is in {date_of_birth.year}"
        )
    return problems


def validate_national_id(
    raw: str,
    date_of_birth: date | None,
    gender: Gender | None,
    field: str = "national_id",
) -> Checked[str]:
    """The canonical 12-digit number, checked for shape, province and agreement with the person."""
    parsed = parse_national_id(raw, field)
    if parsed.value is None:
        return Checked(None, parsed.violations)
    problems = national_id_mismatches(parsed.value, date_of_birth, gender)
    if problems:
        return bad(field, "; ".join(problems))
    return good(parsed.value.digits)


# --- Enterprise code (mã số doanh nghiệp = tax code, MST) -----------------------------
#
# The head office has the 10-digit tax code (9 digits + a check digit); a branch or
# dependent unit appends a 3-digit number, 001-999, written after a dash. We accept the
# dash, spaces around it, or the 13 digits run together, and store "0123456789" or
# "0123456789-001". python-stdnum checks the check digit and the reserved zero parts.

_ENTERPRISE_CODE = re.compile(r"([0-9]{10})(?:\s*-?\s*([0-9]{3}))?")


def parse_enterprise_code(raw: str, field: str = "enterprise_code") -> Checked[str]:
    match = _ENTERPRISE_CODE.fullmatch(raw.strip())
    if match is None:
        return bad(
            field,
            "an enterprise code is 10 digits, optionally followed by -NNN for a branch",
        )
    head, branch = match.group(1), match.group(2) or ""
    try:
        compact = mst.validate(head + branch)
    except InvalidChecksum:
        return bad(field, f"the check digit of {head} is wrong")
    except InvalidComponent:
        return bad(field, _component_problem(head, branch))
    except ValidationError as error:  # shape was checked above; kept so nothing escapes
        return bad(field, f"not a valid enterprise code: {error}")
    return good(mst.format(compact))


def enterprise_check_digit(first_nine: str) -> str | None:
    """The tenth digit for these nine, or None when no digit makes them a valid code.

    stdnum's formula is 10 - (weighted sum mod 11); a remainder of 0 gives "10", and
    those nine-digit prefixes are simply never issued.
    """
    digit = mst.calc_check_digit(first_nine)
    return digit if len(digit) == 1 else None


def _component_problem(head: str, branch: str) -> str:
    if branch == "000":
        return "the branch number must be 001-999, not 000"
    return f"digits 3-9 of {head} cannot all be zero"


# --- VSIC 2018 business lines (Decision 27/2018/QD-TTg) ------------------------------
#
# Level 4 codes are 4 digits, level 5 codes are 5 digits. Only the shape is checked;
# the registry does not hold the code list.

_VSIC_CODE = re.compile(r"[0-9]{4,5}")


def parse_business_lines(raw: Sequence[str], field: str = "business_lines") -> Checked[tuple[str, ...]]:
    """At least one line; every code a 4- or 5-digit VSIC code; no code twice."""
    if not raw:
        return bad(field, "at least one business line (VSIC code) is required")
    violations: list[FieldViolation] = []
    seen: set[str] = set()
    codes: list[str] = []
    for index, code in enumerate(line.strip() for line in raw):
        path = f"{field}[{index}]"
        if not _VSIC_CODE.fullmatch(code):
            violations.append(FieldViolation(path, "a VSIC 2018 code is 4 digits (level 4) or 5 digits (level 5)"))
        elif code in seen:
            violations.append(FieldViolation(path, f"{code} is listed more than once"))
        seen.add(code)
        codes.append(code)
    if violations:
        return Checked(None, tuple(violations))
    return good(tuple(codes))


# --- Registry ids ----------------------------------------------------------------------


def parse_registry_id(raw: str, field: str) -> Checked[str]:
    """A registry id: a UUID, stored in its canonical lower-case hyphenated form."""
    if _CANONICAL_UUID.fullmatch(raw):  # already canonical (every id the registry makes): as is
        return good(raw)
    try:
        return good(str(uuid.UUID(raw.strip())))
    except ValueError:
        return bad(field, "not a registry id (a UUID such as 3f2b8c4e-...)")


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
