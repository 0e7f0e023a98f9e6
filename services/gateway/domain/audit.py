"""The gateway's access audit: what one row records; the hash chain itself is kit.hashchain."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from kit.hashchain import GENESIS_HASH, ChainHead, HashChain, Verification, utc_text
from kit.hashchain import ChainedEntry as ChainedEntryOf

# What an audit row can name: a citizen or business (registry id, national id, a business's
# enterprise code, i.e. its tax code) or a dossier.
SUBJECT_KINDS = ("registry_id", "national_id", "enterprise_code", "dossier_id")
# Kinds that identify a person (citizen or business) rather than one of their dossiers.
PERSON_KINDS = ("registry_id", "national_id", "enterprise_code")
NATIONAL_ID_LENGTH = 12


MAX_SUBJECT_LENGTH = 64


@dataclass(frozen=True, order=True)
class Subject:
    """Something a call touched: a citizen or business (registry_id, national_id) or a dossier."""

    kind: str
    value: str

    @classmethod
    def of(cls, kind: str, value: str) -> Subject:
        """A subject as the audit log stores it. A value no real identifier looks like (too long,
        or holding control characters) is kept as its SHA-256, so a hostile call is still audited
        instead of failing the audit insert."""
        if len(value) <= MAX_SUBJECT_LENGTH and value.isprintable():
            return cls(kind, value)
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return cls(kind, f"sha256:{digest}")


def tax_code_subject(tax_code: str) -> Subject:
    """A tax code as the subject it names. A citizen's personal tax code is their 12-digit national
    id (since 1 July 2025); a business's is its enterprise code (10 digits, or 10-3 for a branch)."""
    code = tax_code.strip()
    if len(code) == NATIONAL_ID_LENGTH and code.isascii() and code.isdigit():
        return Subject.of("national_id", code)
    return Subject.of("enterprise_code", code)


@dataclass(frozen=True)
class AuditEntry:
    recorded_at: datetime
    agency: str
    method: str
    purpose: str
    outcome: str
    trace_id: str
    subjects: frozenset[Subject]


def _fields(entry: AuditEntry) -> dict[str, object]:
    return {
        "recorded_at": utc_text(entry.recorded_at),
        "agency": entry.agency,
        "method": entry.method,
        "purpose": entry.purpose,
        "outcome": entry.outcome,
        "trace_id": entry.trace_id,
        "subjects": [[s.kind, s.value] for s in sorted(entry.subjects)],
    }


AUDIT_CHAIN: HashChain[AuditEntry] = HashChain(_fields)
ChainedEntry = ChainedEntryOf[AuditEntry]
canonical_form = AUDIT_CHAIN.canonical_form
row_hash = AUDIT_CHAIN.row_hash
chain = AUDIT_CHAIN.chain
verify_chain = AUDIT_CHAIN.verify

__all__ = [
    "AUDIT_CHAIN",
    "GENESIS_HASH",
    "PERSON_KINDS",
    "SUBJECT_KINDS",
    "AuditEntry",
    "ChainHead",
    "ChainedEntry",
    "Subject",
    "Verification",
    "canonical_form",
    "chain",
    "row_hash",
    "tax_code_subject",
    "verify_chain",
]
