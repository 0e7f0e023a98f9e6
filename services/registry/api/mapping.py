"""Protobuf <-> domain: requests become drafts and changes, records become messages.

Shapes the domain cannot see (a malformed date string, a missing enum) are reported here as
field violations, merged with the domain's own so the caller gets every bad field at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from citydata.v1 import common_pb2
from citydata.v1 import registry_pb2 as pb

from kit.errors import FieldViolation, InvalidArgument
from kit.proto_time import timestamp
from services.registry import domain

T = TypeVar("T")

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

GENDER_TO_PB = {domain.Gender.MALE: pb.GENDER_MALE, domain.Gender.FEMALE: pb.GENDER_FEMALE}
GENDER_FROM_PB = {v: k for k, v in GENDER_TO_PB.items()}
STATUS_TO_PB = {
    domain.BusinessStatus.ACTIVE: pb.BUSINESS_STATUS_ACTIVE,
    domain.BusinessStatus.SUSPENDED: pb.BUSINESS_STATUS_SUSPENDED,
    domain.BusinessStatus.DISSOLVED: pb.BUSINESS_STATUS_DISSOLVED,
}
STATUS_FROM_PB = {v: k for k, v in STATUS_TO_PB.items()}


class Violations:
    """Shape problems found while reading a request, before the domain sees it."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.found: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.found.append(FieldViolation(self.prefix + field, description))

    def check(self, build: Callable[[], T]) -> T:
        """Run the domain constructor; report our violations together with its own.

        A field we already flagged (e.g. an unreadable date) was passed on as missing, so the
        domain's "is required" for that same field is dropped in favour of ours.
        """
        try:
            result = build()
        except InvalidArgument as error:
            ours = {v.field for v in self.found}
            theirs = [v for v in error.violations if v.field not in ours]
            raise InvalidArgument([*self.found, *theirs]) from None
        if self.found:
            raise InvalidArgument(self.found)
        return result

    def raise_if_any(self) -> None:
        if self.found:
            raise InvalidArgument(self.found)


# --- Requests -> domain -----------------------------------------------------------------


def parse_date(raw: str, field: str, violations: Violations) -> date | None:
    if not raw:
        return None
    if _ISO_DATE.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    violations.add(field, f"{raw!r} is not a date in the form YYYY-MM-DD")
    return None


def address_draft(address: common_pb2.Address) -> domain.AddressDraft:
    return domain.AddressDraft(address.province_code, address.ward_code, address.street)


def citizen_draft(message: pb.CitizenInput, violations: Violations) -> domain.CitizenDraft:
    return domain.CitizenDraft(
        national_id=message.national_id,
        full_name=message.full_name,
        date_of_birth=parse_date(message.date_of_birth, "date_of_birth", violations),
        gender=GENDER_FROM_PB.get(message.gender),
        address=address_draft(message.address),
        phone=message.phone,
        email=message.email,
    )


def citizen_changes(message: pb.CitizenChanges, violations: Violations) -> domain.CitizenChanges:
    return domain.CitizenChanges(
        national_id=message.national_id if message.HasField("national_id") else None,
        full_name=message.full_name if message.HasField("full_name") else None,
        date_of_birth=(
            parse_date(message.date_of_birth, "date_of_birth", violations)
            if message.HasField("date_of_birth")
            else None
        ),
        gender=GENDER_FROM_PB.get(message.gender),
        address=address_draft(message.address) if message.HasField("address") else None,
        phone=message.phone if message.HasField("phone") else None,
        email=message.email if message.HasField("email") else None,
    )


def business_draft(message: pb.BusinessInput) -> domain.BusinessDraft:
    return domain.BusinessDraft(
        enterprise_code=message.enterprise_code,
        name=message.name,
        legal_representative_id=message.legal_representative_id,
        address=address_draft(message.address),
        business_lines=list(message.business_lines),
    )


def business_changes(message: pb.BusinessChanges) -> domain.BusinessChanges:
    return domain.BusinessChanges(
        enterprise_code=message.enterprise_code if message.HasField("enterprise_code") else None,
        name=message.name if message.HasField("name") else None,
        legal_representative_id=(
            message.legal_representative_id if message.HasField("legal_representative_id") else None
        ),
        address=address_draft(message.address) if message.HasField("address") else None,
        business_lines=list(message.business_lines.codes) if message.HasField("business_lines") else None,
        status=STATUS_FROM_PB.get(message.status),
    )


# --- Domain -> messages -----------------------------------------------------------------


def address_pb(address: domain.Address) -> common_pb2.Address:
    return common_pb2.Address(province_code=address.province_code, ward_code=address.ward_code, street=address.street)


def citizen_pb(citizen: domain.Citizen) -> pb.Citizen:
    return pb.Citizen(
        registry_id=citizen.registry_id,
        national_id=citizen.national_id,
        full_name=citizen.full_name,
        date_of_birth=citizen.date_of_birth.isoformat(),
        gender=GENDER_TO_PB[citizen.gender],
        address=address_pb(citizen.address),
        phone=citizen.phone or "",
        email=citizen.email or "",
        version=citizen.version,
        create_time=timestamp(citizen.created_at),
        update_time=timestamp(citizen.updated_at),
    )


def business_pb(business: domain.Business) -> pb.Business:
    return pb.Business(
        registry_id=business.registry_id,
        enterprise_code=business.enterprise_code,
        name=business.name,
        legal_representative_id=business.legal_representative_id,
        address=address_pb(business.address),
        status=STATUS_TO_PB[business.status],
        business_lines=list(business.business_lines),
        version=business.version,
        create_time=timestamp(business.created_at),
        update_time=timestamp(business.updated_at),
    )


GENDER_NAME_TO_PB = {gender.value: number for gender, number in GENDER_TO_PB.items()}


def citizen_pb_from_row(row: tuple[Any, ...]) -> pb.Citizen:
    """A `store.CitizenReads` row (store.CITIZEN_READ_COLUMNS) straight to its message, the same
    message `citizen_pb` builds from the domain record (the row was valid when written)."""
    (
        registry_id,
        national_id,
        full_name,
        born,
        gender,
        province,
        ward,
        street,
        phone,
        email,
        version,
        created,
        updated,
    ) = row
    return pb.Citizen(
        registry_id=registry_id,
        national_id=national_id,
        full_name=full_name,
        date_of_birth=born.isoformat(),
        gender=GENDER_NAME_TO_PB[gender],
        address=common_pb2.Address(province_code=province, ward_code=ward, street=street),
        phone=phone or "",
        email=email or "",
        version=version,
        create_time=timestamp(created),
        update_time=timestamp(updated),
    )
