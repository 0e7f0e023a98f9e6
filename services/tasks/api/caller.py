"""Who is calling: the agency the gateway authenticated (metadata `x-citydata-agency`).

A direct call inside the platform carries no such metadata and is trusted like any internal
call; a call through the gateway may act only as the party the action belongs to.
"""

from __future__ import annotations

from typing import Any

from kit.errors import PermissionDenied

AGENCY_HEADER = "x-citydata-agency"


def caller_agency(context: Any) -> str | None:
    metadata = getattr(context, "invocation_metadata", lambda: ())() or ()
    for key, value in metadata:
        if key == AGENCY_HEADER:
            return str(value)
    return None


def require_caller(context: Any, allowed: set[str] | frozenset[str], role: str) -> None:
    """PERMISSION_DENIED unless the caller (when known) is one of `allowed`."""
    caller = caller_agency(context)
    if caller is not None and caller not in allowed:
        raise PermissionDenied(f"only {role} may do this; the caller is {caller}", missing_right=role)
