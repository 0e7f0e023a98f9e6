"""Who is calling: the agency in `x-citydata-agency`, believed only from a trusted service."""

from __future__ import annotations

import os
from collections.abc import Mapping

from kit.service_identity import AGENCY_HEADER, CallerVerifier, service_key

AGENCY_METADATA = AGENCY_HEADER
DEFAULT_TRUSTED_CALLERS = "GATEWAY,DOSSIER"


def caller_verifier(environ: Mapping[str, str] | None = None) -> CallerVerifier:
    """Who may call on behalf of an agency: SIGNING_TRUSTED_CALLERS (default GATEWAY,DOSSIER),
    proven by mutual TLS or (outside production) by a caller assertion (kit.service_identity)."""
    env = os.environ if environ is None else environ
    names = env.get("SIGNING_TRUSTED_CALLERS") or DEFAULT_TRUSTED_CALLERS
    trusted = frozenset(name.strip().upper() for name in names.split(",") if name.strip())
    return CallerVerifier(trusted, service_key(env))
