"""The explicit row <-> domain mapping of citizens and businesses, and the COPY records of a bulk
import (the same values as the INSERT rows, in `HISTORY_COLUMNS` / `CITIZEN_COLUMNS` order)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import RowMapping

from kit.db import utc
from services.registry import domain
from services.registry.store.tables import PREFIX_LENGTH


def search_prefixes(search_key: str) -> list[str]:
    """Every prefix, 1 to PREFIX_LENGTH letters, of every word of a folded name, once each."""
    words = domain.search_terms(search_key)
    return sorted({word[:length] for word in words for length in range(1, min(len(word), PREFIX_LENGTH) + 1)})


def citizen_history_row(citizen: domain.Citizen) -> dict[str, Any]:
    return {
        "registry_id": citizen.registry_id,
        "national_id": citizen.national_id,
        "full_name": citizen.full_name,
        "search_key": citizen.search_key,
        "date_of_birth": citizen.date_of_birth,
        "gender": citizen.gender.value,
        "province_code": citizen.address.province_code,
        "ward_code": citizen.address.ward_code,
        "street": citizen.address.street,
        "phone": citizen.phone,
        "email": citizen.email,
        "version": citizen.version,
        "created_at": citizen.created_at,
        "updated_at": citizen.updated_at,
    }


HISTORY_COLUMNS = (
    "registry_id", "national_id", "full_name", "search_key", "date_of_birth", "gender", "province_code",
    "ward_code", "street", "phone", "email", "version", "created_at", "updated_at",
)  # fmt: skip
CITIZEN_COLUMNS = (*HISTORY_COLUMNS, "search_prefixes")


def history_record(citizen: domain.Citizen) -> tuple[Any, ...]:
    """`citizen_history_row` as a COPY record in `HISTORY_COLUMNS` order."""
    address = citizen.address
    return (
        citizen.registry_id, citizen.national_id, citizen.full_name, citizen.search_key, citizen.date_of_birth,
        citizen.gender.value, address.province_code, address.ward_code, address.street, citizen.phone,
        citizen.email, citizen.version, citizen.created_at, citizen.updated_at,
    )  # fmt: skip


def citizen_row(citizen: domain.Citizen) -> dict[str, Any]:
    """The `citizens` row: the history row plus the search column only the current version needs."""
    row = citizen_history_row(citizen)
    row["search_prefixes"] = search_prefixes(row["search_key"])
    return row


def citizen_from_row(row: RowMapping) -> domain.Citizen:
    return domain.Citizen(
        registry_id=row["registry_id"],
        national_id=row["national_id"],
        full_name=row["full_name"],
        date_of_birth=row["date_of_birth"],
        gender=domain.Gender(row["gender"]),
        address=domain.Address(row["province_code"], row["ward_code"], row["street"]),
        phone=row["phone"],
        email=row["email"],
        version=row["version"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
    )


def business_row(business: domain.Business) -> dict[str, Any]:
    return {
        "registry_id": business.registry_id,
        "enterprise_code": business.enterprise_code,
        "name": business.name,
        "search_key": business.search_key,
        "legal_representative_id": business.legal_representative_id,
        "province_code": business.address.province_code,
        "ward_code": business.address.ward_code,
        "street": business.address.street,
        "status": business.status.value,
        "business_lines": list(business.business_lines),
        "version": business.version,
        "created_at": business.created_at,
        "updated_at": business.updated_at,
    }


def business_from_row(row: RowMapping) -> domain.Business:
    return domain.Business(
        registry_id=row["registry_id"],
        enterprise_code=row["enterprise_code"],
        name=row["name"],
        legal_representative_id=row["legal_representative_id"],
        address=domain.Address(row["province_code"], row["ward_code"], row["street"]),
        status=domain.BusinessStatus(row["status"]),
        business_lines=tuple(row["business_lines"]),
        version=row["version"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
    )
