"""Who may apply: a subject of the registry (a citizen or a business), and what a letter to
them needs to know (name, gender, national id or tax code)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from services.dossier.domain.lifecycle import ApplicantKind


class Gender(StrEnum):
    MALE = "MALE"
    FEMALE = "FEMALE"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class Applicant:
    """The registry's record of an applicant, as far as a letter to them needs it.

    `public_id` is the identifier the applicant knows themselves by: the 12-digit national id
    (CCCD) of a citizen, the enterprise (tax) code of a business; never the registry's own id.
    `gender` is UNKNOWN for a business."""

    kind: ApplicantKind
    name: str
    public_id: str
    gender: Gender = Gender.UNKNOWN


class ApplicantDirectory(Protocol):
    """Answers whether the registry knows an applicant; raises kit.errors.Unavailable when it
    cannot tell (the registry is down), so a dossier is never received for a ghost."""

    def exists(self, kind: ApplicantKind, registry_id: str) -> bool: ...

    def applicant(self, kind: ApplicantKind, registry_id: str) -> Applicant | None:
        """The applicant's registered details; None when the registry does not know them (or
        when no registry is configured); raises kit.errors.Unavailable when it cannot answer now."""
        ...


class TrustingApplicantDirectory:
    """Used when no registry address is configured (local runs, imports of historical data
    whose applicants predate the registry): every applicant id is taken as given."""

    def exists(self, kind: ApplicantKind, registry_id: str) -> bool:
        return bool(registry_id.strip())

    def applicant(self, kind: ApplicantKind, registry_id: str) -> Applicant | None:
        return None
