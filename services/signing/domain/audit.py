"""The signing audit log's hash chain (pure: no I/O).

Every issuance, revocation and signature is one row, numbered 1, 2, 3, ... without gaps:
`row_hash = sha256(previous_hash || canonical JSON of the row)`, computed by kit.hashchain.
The store room (`services.signing.store`) reads and writes the rows; this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kit.hashchain import GENESIS_HASH, ChainHead, HashChain, Verification, utc_text
from kit.hashchain import ChainedEntry as ChainedEntryOf

CERTIFICATE_ISSUED = "certificate.issued"
CERTIFICATE_REVOKED = "certificate.revoked"
DOCUMENT_SIGNED = "document.signed"


@dataclass(frozen=True)
class AuditEntry:
    """Who did what with which key: never a key, a PIN or a document's content."""

    recorded_at: datetime
    actor: str  # the calling agency code or CITY
    action: str  # CERTIFICATE_ISSUED, CERTIFICATE_REVOKED or DOCUMENT_SIGNED
    agency: str  # the agency whose certificate/key was used
    serial: str  # certificate serial, hex
    document_sha256: str = ""  # DOCUMENT_SIGNED only
    detail: str = ""  # e.g. "CADES_DETACHED B_T", "SEAL", "key_compromise"


def _fields(entry: AuditEntry) -> dict[str, object]:
    return {
        "recorded_at": utc_text(entry.recorded_at),
        "actor": entry.actor,
        "action": entry.action,
        "agency": entry.agency,
        "serial": entry.serial,
        "document_sha256": entry.document_sha256,
        "detail": entry.detail,
    }


AUDIT_CHAIN: HashChain[AuditEntry] = HashChain(_fields)
ChainedEntry = ChainedEntryOf[AuditEntry]
canonical_form = AUDIT_CHAIN.canonical_form
row_hash = AUDIT_CHAIN.row_hash
chain = AUDIT_CHAIN.chain
verify_chain = AUDIT_CHAIN.verify

__all__ = [
    "AUDIT_CHAIN",
    "CERTIFICATE_ISSUED",
    "CERTIFICATE_REVOKED",
    "DOCUMENT_SIGNED",
    "GENESIS_HASH",
    "AuditEntry",
    "ChainHead",
    "ChainedEntry",
    "Verification",
    "canonical_form",
    "chain",
    "row_hash",
    "verify_chain",
]
