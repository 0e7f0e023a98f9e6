"""Citizens and businesses: immutable records, created and changed only through the functions here.

Every constructor re-validates the whole record and reports every bad field in one
InvalidArgument, so a caller fixes a form in one round trip. Changes carry the version
the caller last read; a mismatch is a concurrent edit and raises Aborted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from types import MappingProxyType
from typing import TypeVar

from kit.errors import Aborted, FailedPrecondition
from services.registry.domain.address import Address, AddressDraft, parse_address
from services.registry.domain.checked import Checked, bad, good, raise_if_invalid
from services.registry.domain.contact import parse_email, parse_phone
from services.registry.domain.dates import as_utc, check_date_of_birth, vietnam_today
from services.registry.domain.enums import BusinessStatus, Gender
from services.registry.domain.identifiers import (
    parse_business_lines,
    parse_enterprise_code,
    parse_registry_id,
    validate_national_id,
)
from services.registry.domain.names import parse_business_name, parse_citizen_name
from services.registry.domain.search import search_key

FIRST_VERSION = 1

_T = TypeVar("_T")

# --- Citizens -----------------------------------------------------------------------


@dataclass(frozen=True)
class Citizen:
    registry_id: str
    national_id: str
    full_name: str
    date_of_birth: date
    gender: Gender
    address: Address
    phone: str | None  # E.164
    email: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def search_key(self) -> str:
        return search_key(self.full_name)


@dataclass(frozen=True)
class CitizenDraft:
    """A citizen as submitted for registration; a missing birth date or gender is None."""

    national_id: str
    full_name: str
    date_of_birth: date | None
    gender: Gender | None
    address: AddressDraft
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class CitizenChanges:
    """Fields to change; None keeps the current value. An empty phone or email removes it."""

    national_id: str | None = None
    full_name: str | None = None
    date_of_birth: date | None = None
    gender: Gender | None = None
    address: AddressDraft | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class _CitizenDetails:
    national_id: str
    full_name: str
    date_of_birth: date
    gender: Gender
    address: Address
    phone: str | None
    email: str | None


def new_citizen(registry_id: str, draft: CitizenDraft, now: datetime) -> Citizen:
    """A validated citizen at version 1, created and updated at `now`."""
    instant = as_utc(now)
    details = _check_citizen(draft, vietnam_today(instant))
    return Citizen(
        registry_id=_service_registry_id(registry_id),
        **vars(details),
        version=FIRST_VERSION,
        created_at=instant,
        updated_at=instant,
    )


def update_citizen(current: Citizen, changes: CitizenChanges, expected_version: int, now: datetime) -> Citizen:
    """The next version of `current` with `changes` applied and everything re-validated.

    A corrected national id is accepted as long as it agrees with the (possibly also
    corrected) birth date and gender.
    """
    _require_version("citizen", current.registry_id, current.version, expected_version)
    instant = as_utc(now)
    details = _check_citizen(_apply_citizen_changes(current, changes), vietnam_today(instant))
    return replace(current, **vars(details), version=current.version + 1, updated_at=instant)


def _check_citizen(draft: CitizenDraft, today: date) -> _CitizenDetails:
    full_name = parse_citizen_name(draft.full_name)
    date_of_birth = check_date_of_birth(draft.date_of_birth, today)
    gender = _check_gender(draft.gender)
    # Compare the id only with a birth date that passed its own checks.
    national_id = validate_national_id(draft.national_id, date_of_birth.value, gender.value)
    address = parse_address(draft.address)
    phone = parse_phone(draft.phone)
    email = parse_email(draft.email)
    raise_if_invalid(national_id, full_name, date_of_birth, gender, address, phone, email)
    return _CitizenDetails(
        national_id=national_id.unwrap(),
        full_name=full_name.unwrap(),
        date_of_birth=date_of_birth.unwrap(),
        gender=gender.unwrap(),
        address=address.unwrap(),
        phone=phone.unwrap(),
        email=email.unwrap(),
    )


def _check_gender(gender: Gender | None) -> Checked[Gender]:
    return good(gender) if gender is not None else bad("gender", "gender is required")


def _apply_citizen_changes(current: Citizen, changes: CitizenChanges) -> CitizenDraft:
    return CitizenDraft(
        national_id=_pick(changes.national_id, current.national_id),
        full_name=_pick(changes.full_name, current.full_name),
        date_of_birth=_pick(changes.date_of_birth, current.date_of_birth),
        gender=_pick(changes.gender, current.gender),
        address=_pick(changes.address, current.address.as_draft()),
        phone=_pick(changes.phone, current.phone),
        email=_pick(changes.email, current.email),
    )


# --- Businesses ---------------------------------------------------------------------

# DISSOLVED is final: a dissolved enterprise's record is closed, so nothing leaves it.
ALLOWED_STATUS_CHANGES: Mapping[BusinessStatus, frozenset[BusinessStatus]] = MappingProxyType(
    {
        BusinessStatus.ACTIVE: frozenset({BusinessStatus.SUSPENDED, BusinessStatus.DISSOLVED}),
        BusinessStatus.SUSPENDED: frozenset({BusinessStatus.ACTIVE, BusinessStatus.DISSOLVED}),
        BusinessStatus.DISSOLVED: frozenset(),
    }
)


@dataclass(frozen=True)
class Business:
    registry_id: str
    enterprise_code: str
    name: str
    legal_representative_id: str  # registry id of a citizen; the service checks it exists
    address: Address
    status: BusinessStatus
    business_lines: tuple[str, ...]  # VSIC 2018 codes, in the order given
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def search_key(self) -> str:
        return search_key(self.name)


@dataclass(frozen=True)
class BusinessDraft:
    """A business as submitted for registration; it starts ACTIVE."""

    enterprise_code: str
    name: str
    legal_representative_id: str
    address: AddressDraft
    business_lines: Sequence[str]


@dataclass(frozen=True)
class BusinessChanges:
    """Fields to change; None keeps the current value. `business_lines` replaces the whole list."""

    enterprise_code: str | None = None
    name: str | None = None
    legal_representative_id: str | None = None
    address: AddressDraft | None = None
    business_lines: Sequence[str] | None = None
    status: BusinessStatus | None = None


@dataclass(frozen=True)
class _BusinessDetails:
    enterprise_code: str
    name: str
    legal_representative_id: str
    address: Address
    business_lines: tuple[str, ...]


def new_business(registry_id: str, draft: BusinessDraft, now: datetime) -> Business:
    """A validated, ACTIVE business at version 1, created and updated at `now`."""
    instant = as_utc(now)
    return Business(
        registry_id=_service_registry_id(registry_id),
        **vars(_check_business(draft)),
        status=BusinessStatus.ACTIVE,
        version=FIRST_VERSION,
        created_at=instant,
        updated_at=instant,
    )


def update_business(current: Business, changes: BusinessChanges, expected_version: int, now: datetime) -> Business:
    """The next version of `current` with `changes` applied and everything re-validated.

    Raises Aborted for a stale version, InvalidArgument for bad fields, and
    FailedPrecondition for a change to a dissolved business or a status change that
    `ALLOWED_STATUS_CHANGES` does not allow.
    """
    _require_version("business", current.registry_id, current.version, expected_version)
    instant = as_utc(now)
    details = _check_business(_apply_business_changes(current, changes))
    status = _next_status(current, changes.status)
    return replace(
        current,
        **vars(details),
        status=status,
        version=current.version + 1,
        updated_at=instant,
    )


def check_status_change(current: BusinessStatus, target: BusinessStatus) -> None:
    """Raise FailedPrecondition unless a business may go from `current` to `target`."""
    if target is current or target in ALLOWED_STATUS_CHANGES[current]:
        return
    raise FailedPrecondition(
        f"a {current} business cannot become {target}",
        reason="INVALID_STATUS_TRANSITION",
    )


def _next_status(current: Business, requested: BusinessStatus | None) -> BusinessStatus:
    if current.status is BusinessStatus.DISSOLVED:
        raise FailedPrecondition(
            f"business {current.registry_id} is dissolved; its record can no longer change",
            reason="BUSINESS_DISSOLVED",
        )
    target = _pick(requested, current.status)
    check_status_change(current.status, target)
    return target


def _check_business(draft: BusinessDraft) -> _BusinessDetails:
    enterprise_code = parse_enterprise_code(draft.enterprise_code)
    name = parse_business_name(draft.name)
    representative = parse_registry_id(draft.legal_representative_id, "legal_representative_id")
    address = parse_address(draft.address)
    business_lines = parse_business_lines(draft.business_lines)
    raise_if_invalid(enterprise_code, name, representative, address, business_lines)
    return _BusinessDetails(
        enterprise_code=enterprise_code.unwrap(),
        name=name.unwrap(),
        legal_representative_id=representative.unwrap(),
        address=address.unwrap(),
        business_lines=business_lines.unwrap(),
    )


def _apply_business_changes(current: Business, changes: BusinessChanges) -> BusinessDraft:
    return BusinessDraft(
        enterprise_code=_pick(changes.enterprise_code, current.enterprise_code),
        name=_pick(changes.name, current.name),
        legal_representative_id=_pick(changes.legal_representative_id, current.legal_representative_id),
        address=_pick(changes.address, current.address.as_draft()),
        business_lines=_pick(changes.business_lines, current.business_lines),
    )


# --- Shared -------------------------------------------------------------------------


def _pick(change: _T | None, current: _T) -> _T:
    return current if change is None else change


def _require_version(kind: str, registry_id: str, current: int, expected: int) -> None:
    if expected != current:
        raise Aborted(
            f"{kind} {registry_id} is at version {current}, not {expected}: "
            "it was changed since you read it; read it again and retry"
        )


def _service_registry_id(registry_id: str) -> str:
    # The service mints registry ids, so a malformed one is a bug, not a caller's mistake.
    checked = parse_registry_id(registry_id, "registry_id")
    if checked.value is None:
        raise ValueError(f"registry id {registry_id!r} is not a UUID")
    return checked.value
