"""Who may apply: a subject of the registry (a citizen or a business)."""

from __future__ import annotations

from typing import Protocol

from services.dossier.domain.lifecycle import ApplicantKind


class ApplicantDirectory(Protocol):
    """Answers whether the registry knows an applicant; raises kit.errors.Unavailable when it
    cannot tell (the registry is down), so a dossier is never received for a ghost."""

    def exists(self, kind: ApplicantKind, registry_id: str) -> bool: ...

    def display_name(self, kind: ApplicantKind, registry_id: str) -> str | None:
        """The applicant's registered name, or None when it cannot be had right now."""
        ...


class TrustingApplicantDirectory:
    """Used when no registry address is configured (local runs, imports of historical data
    whose applicants predate the registry): every applicant id is taken as given."""

    def exists(self, kind: ApplicantKind, registry_id: str) -> bool:
        return bool(registry_id.strip())

    def display_name(self, kind: ApplicantKind, registry_id: str) -> str | None:
        return None
