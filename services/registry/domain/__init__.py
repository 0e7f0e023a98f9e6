"""The registry's pure domain: citizen and business records and the rules they obey.

No I/O here: callers pass the clock's `now`, and the service checks what needs the
database (uniqueness, that a legal representative exists).
"""

from services.registry.domain.address import (
    Address,
    AddressDraft,
    parse_address,
    parse_province_code,
    parse_ward_code,
)
from services.registry.domain.checked import Checked, raise_if_invalid
from services.registry.domain.contact import parse_email, parse_phone
from services.registry.domain.dates import (
    EARLIEST_BIRTH_DATE,
    VIETNAM_TIME,
    check_date_of_birth,
    vietnam_today,
)
from services.registry.domain.enums import BusinessStatus, Gender
from services.registry.domain.events import (
    BusinessRegistered,
    BusinessUpdated,
    CitizenRegistered,
    CitizenUpdated,
    RegistryEvent,
)
from services.registry.domain.identifiers import (
    NationalId,
    build_national_id,
    enterprise_check_digit,
    national_id_mismatches,
    parse_business_lines,
    parse_enterprise_code,
    parse_national_id,
    parse_registry_id,
    validate_national_id,
)
from services.registry.domain.model import (
    ALLOWED_STATUS_CHANGES,
    Business,
    BusinessChanges,
    BusinessDraft,
    Citizen,
    CitizenChanges,
    CitizenDraft,
    check_status_change,
    new_business,
    new_citizen,
    update_business,
    update_citizen,
)
from services.registry.domain.names import (
    normalise_text,
    parse_business_name,
    parse_citizen_name,
    parse_street,
)
from services.registry.domain.provinces import (
    HO_CHI_MINH_CITY,
    PROVINCES,
    is_province_code,
    province_name,
)
from services.registry.domain.search import rank, search_key, search_terms

__all__ = [
    "ALLOWED_STATUS_CHANGES",
    "EARLIEST_BIRTH_DATE",
    "HO_CHI_MINH_CITY",
    "PROVINCES",
    "VIETNAM_TIME",
    "Address",
    "AddressDraft",
    "Business",
    "BusinessChanges",
    "BusinessDraft",
    "BusinessRegistered",
    "BusinessStatus",
    "BusinessUpdated",
    "Checked",
    "Citizen",
    "CitizenChanges",
    "CitizenDraft",
    "CitizenRegistered",
    "CitizenUpdated",
    "Gender",
    "NationalId",
    "RegistryEvent",
    "build_national_id",
    "check_date_of_birth",
    "check_status_change",
    "enterprise_check_digit",
    "is_province_code",
    "national_id_mismatches",
    "new_business",
    "new_citizen",
    "normalise_text",
    "parse_address",
    "parse_business_lines",
    "parse_business_name",
    "parse_citizen_name",
    "parse_email",
    "parse_enterprise_code",
    "parse_national_id",
    "parse_phone",
    "parse_province_code",
    "parse_registry_id",
    "parse_street",
    "parse_ward_code",
    "province_name",
    "raise_if_invalid",
    "rank",
    "search_key",
    "search_terms",
    "update_business",
    "update_citizen",
    "validate_national_id",
    "vietnam_today",
]
