"""Who may call what: the access policy operators keep in a TOML file.

Deny by default. An agency may call an RPC only if its grant lists the RPC (or its service with
`/*`). RPCs whose responses hold personal data also need a purpose code from the catalogue (and
from the agency's own list when it has one); of every personal message type in a response the
agency sees only the fields of the groups it holds plus the type's `unrestricted` fields. A field
no group names is withheld from everybody, so a field added to a proto later stays hidden until
an operator classifies it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from kit.errors import PermissionDenied

UNRESTRICTED_GROUP = "unrestricted"
PURPOSE_RIGHT = "purpose"


class PolicyError(Exception):
    """The policy document is malformed; the message says where."""


@dataclass(frozen=True)
class RateLimit:
    per_second: float
    burst: int


@dataclass(frozen=True)
class AgencyGrant:
    code: str
    name: str
    rpcs: frozenset[str]
    field_groups: frozenset[str]
    purposes: frozenset[str] | None  # None: every purpose of the catalogue
    rate_limit: RateLimit

    def may_call(self, right: str) -> bool:
        service = right.rsplit("/", 1)[0]
        return right in self.rpcs or f"{service}/*" in self.rpcs


@dataclass(frozen=True)
class Policy:
    purposes: Mapping[str, str]
    field_groups: Mapping[str, Mapping[str, frozenset[str]]]  # message type -> group -> field names
    agencies: Mapping[str, AgencyGrant]
    default_rate_limit: RateLimit

    @property
    def personal_message_types(self) -> frozenset[str]:
        return frozenset(self.field_groups)

    def rate_limit_of(self, agency: str) -> RateLimit:
        grant = self.agencies.get(agency)
        return grant.rate_limit if grant is not None else self.default_rate_limit

    def authorize(self, agency: str, right: str) -> AgencyGrant:
        """The agency's grant if it may call `right` (`package.Service/Method`); else PermissionDenied."""
        grant = self.agencies.get(agency)
        if grant is None or not grant.may_call(right):
            raise PermissionDenied(f"agency {agency!r} has no right to call {right}", missing_right=right)
        return grant

    def check_purpose(self, grant: AgencyGrant, purpose: str) -> str:
        """The declared purpose if the grant allows it; reading personal data without one is denied."""
        if not purpose:
            raise PermissionDenied(
                "reading personal data needs a purpose code in the x-citydata-purpose metadata",
                missing_right=PURPOSE_RIGHT,
            )
        allowed = self.purposes.keys() if grant.purposes is None else grant.purposes
        if purpose not in self.purposes or purpose not in allowed:
            raise PermissionDenied(
                f"agency {grant.code!r} may not process personal data for purpose {purpose!r}",
                missing_right=f"{PURPOSE_RIGHT}:{purpose}",
            )
        return purpose

    def visible_fields(self, grant: AgencyGrant, message_type: str) -> frozenset[str] | None:
        """Fields of `message_type` the agency may see; None when the type holds no personal data."""
        groups = self.field_groups.get(message_type)
        if groups is None:
            return None
        visible: set[str] = set(groups.get(UNRESTRICTED_GROUP, frozenset()))
        for name in grant.field_groups:
            visible |= groups.get(name, frozenset())
        return frozenset(visible)

    def withheld_groups(self, grant: AgencyGrant, message_types: Collection[str] | None = None) -> list[str]:
        """The groups the agency does not hold, of `message_types` (a response's personal types)
        or of every classified type when None."""
        types = self.field_groups.keys() if message_types is None else message_types
        every_group = {name for t in types for name in self.field_groups.get(t, {})} - {UNRESTRICTED_GROUP}
        return sorted(every_group - grant.field_groups)


def parse_policy(document: Mapping[str, Any], agency_codes: Collection[str] | None = None) -> Policy:
    """A Policy from the parsed TOML document; PolicyError names the first problem found.
    With `agency_codes` (the agency directory), a grant to any other code is an error."""
    _only_keys(document, {"purposes", "field_groups", "defaults", "agencies"}, "the policy")
    purposes = _purposes(document.get("purposes", {}))
    field_groups = _field_groups(document.get("field_groups", {}))
    defaults = _table(document.get("defaults", {}), "[defaults]")
    default_limit = _rate_limit(defaults, RateLimit(per_second=50.0, burst=100), "[defaults]")
    known_groups = {name for groups in field_groups.values() for name in groups}
    raw_agencies = _table(document.get("agencies", {}), "[agencies]")
    if agency_codes is not None:
        _only_directory_agencies(raw_agencies, agency_codes)
    agencies = {
        code: _agency(code, _table(raw, f"[agencies.{code}]"), purposes, known_groups, default_limit)
        for code, raw in raw_agencies.items()
    }
    return Policy(purposes, field_groups, agencies, default_limit)


def _only_directory_agencies(raw_agencies: Mapping[str, Any], agency_codes: Collection[str]) -> None:
    unknown = sorted(code for code in raw_agencies if code not in agency_codes)
    if unknown:
        raise PolicyError(
            f"[agencies] {', '.join(unknown)}: not in the agency directory (kit/data/agencies.toml); "
            "grants name agencies by their directory code"
        )


def _purposes(raw: Any) -> dict[str, str]:
    table = _table(raw, "[purposes]")
    for code, description in table.items():
        if not isinstance(description, str) or not description.strip():
            raise PolicyError(f"[purposes] {code}: give a description (a non-empty string)")
    return dict(table)


def _field_groups(raw: Any) -> dict[str, dict[str, frozenset[str]]]:
    result: dict[str, dict[str, frozenset[str]]] = {}
    for message_type, groups in _table(raw, "[field_groups]").items():
        where = f'[field_groups."{message_type}"]'
        result[message_type] = {
            name: _strings(fields, f"{where} {name}") for name, fields in _table(groups, where).items()
        }
        _no_field_in_two_groups(result[message_type], where)
    return result


def _no_field_in_two_groups(groups: Mapping[str, frozenset[str]], where: str) -> None:
    seen: dict[str, str] = {}
    for group, fields in groups.items():
        for name in fields:
            if name in seen:
                raise PolicyError(f"{where}: field {name!r} is in both {seen[name]!r} and {group!r}")
            seen[name] = group


def _agency(
    code: str, raw: Mapping[str, Any], purposes: Mapping[str, str], known_groups: set[str], default_limit: RateLimit
) -> AgencyGrant:
    where = f"[agencies.{code}]"
    _only_keys(raw, {"name", "rpcs", "field_groups", "purposes", "rate_per_second", "burst"}, where)
    groups = _strings(raw.get("field_groups", []), f"{where} field_groups")
    unknown_groups = groups - known_groups
    if unknown_groups:
        raise PolicyError(f"{where} field_groups: unknown group(s) {sorted(unknown_groups)}")
    allowed_purposes = _strings(raw["purposes"], f"{where} purposes") if "purposes" in raw else None
    unknown_purposes = (allowed_purposes or frozenset()) - purposes.keys()
    if unknown_purposes:
        raise PolicyError(f"{where} purposes: not in [purposes]: {sorted(unknown_purposes)}")
    rpcs = _strings(raw.get("rpcs", []), f"{where} rpcs")
    malformed = [rpc for rpc in rpcs if rpc.count("/") != 1 or rpc.startswith("/")]
    if malformed:
        raise PolicyError(
            f"{where} rpcs: write rights as 'package.Service/Method' or 'package.Service/*': {sorted(malformed)}"
        )
    return AgencyGrant(
        code=code,
        name=str(raw.get("name", code)),
        rpcs=rpcs,
        field_groups=groups,
        purposes=allowed_purposes,
        rate_limit=_rate_limit(raw, default_limit, where),
    )


def _rate_limit(raw: Mapping[str, Any], default: RateLimit, where: str) -> RateLimit:
    per_second = raw.get("rate_per_second", default.per_second)
    burst = raw.get("burst", default.burst)
    if not isinstance(per_second, int | float) or isinstance(per_second, bool) or per_second <= 0:
        raise PolicyError(f"{where} rate_per_second must be a positive number")
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
        raise PolicyError(f"{where} burst must be a whole number of at least 1")
    return RateLimit(float(per_second), burst)


def _table(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where} must be a table")
    return raw


def _strings(raw: Any, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
        raise PolicyError(f"{where} must be a list of non-empty strings")
    return frozenset(raw)


def _only_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(allowed)})")
