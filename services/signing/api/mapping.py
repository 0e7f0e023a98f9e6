"""PKI records and domain values <-> `citydata.v1.signing` messages, both ways, and the
certificate index's rows."""

from __future__ import annotations

from datetime import datetime

from citydata.v1 import signing_pb2 as pb

from kit.proto_time import timestamp
from services.signing.crypto.pki import IssuedCertificate
from services.signing.domain.certificates import (
    CertificateKind,
    Indication,
    RevocationReason,
    RevocationStatus,
    SignatureLevel,
    VerificationReport,
)
from services.signing.store.certificate_index import CertificateRow

_KINDS = {
    CertificateKind.SEAL: pb.CERTIFICATE_KIND_SEAL,
    CertificateKind.OFFICIAL: pb.CERTIFICATE_KIND_OFFICIAL,
    CertificateKind.ISSUING_CA: pb.CERTIFICATE_KIND_ISSUING_CA,
    CertificateKind.ROOT_CA: pb.CERTIFICATE_KIND_ROOT_CA,
    CertificateKind.TSA: pb.CERTIFICATE_KIND_TSA,
}
REASONS = {
    pb.REVOCATION_REASON_UNSPECIFIED: RevocationReason.UNSPECIFIED,
    pb.REVOCATION_REASON_KEY_COMPROMISE: RevocationReason.KEY_COMPROMISE,
    pb.REVOCATION_REASON_CA_COMPROMISE: RevocationReason.CA_COMPROMISE,
    pb.REVOCATION_REASON_AFFILIATION_CHANGED: RevocationReason.AFFILIATION_CHANGED,
    pb.REVOCATION_REASON_SUPERSEDED: RevocationReason.SUPERSEDED,
    pb.REVOCATION_REASON_CESSATION_OF_OPERATION: RevocationReason.CESSATION_OF_OPERATION,
    pb.REVOCATION_REASON_CERTIFICATE_HOLD: RevocationReason.CERTIFICATE_HOLD,
}
LEVELS = {pb.SIGNATURE_LEVEL_B_B: SignatureLevel.B_B, pb.SIGNATURE_LEVEL_B_T: SignatureLevel.B_T}
LEVEL_PB = {level: value for value, level in LEVELS.items()}
_INDICATIONS = {
    Indication.TOTAL_PASSED: pb.INDICATION_TOTAL_PASSED,
    Indication.TOTAL_FAILED: pb.INDICATION_TOTAL_FAILED,
    Indication.INDETERMINATE: pb.INDICATION_INDETERMINATE,
}
_REVOCATION_STATUSES = {
    RevocationStatus.GOOD: pb.REVOCATION_STATUS_GOOD,
    RevocationStatus.REVOKED: pb.REVOCATION_STATUS_REVOKED,
    RevocationStatus.UNKNOWN: pb.REVOCATION_STATUS_UNKNOWN,
}


def serial_hex(issued: IssuedCertificate) -> str:
    return f"{issued.serial:x}"


def agency_of(issued: IssuedCertificate) -> str:
    """The agency code in the subject's OU; empty for the root CA and the TSA."""
    return str(issued.certificate.subject.native.get("organizational_unit_name") or "")


def _validity(issued: IssuedCertificate) -> tuple[datetime, datetime]:
    validity = issued.certificate["tbs_certificate"]["validity"]
    return validity["not_before"].native, validity["not_after"].native


def certificate_row(issued: IssuedCertificate, issued_at: datetime) -> CertificateRow:
    not_before, not_after = _validity(issued)
    return CertificateRow(
        serial=serial_hex(issued),
        agency=agency_of(issued),
        kind=issued.kind.value,
        subject=issued.subject[:400],
        issuer_ca_id=issued.ca_id,
        not_before=not_before,
        not_after=not_after,
        der=issued.certificate.dump(),
        issued_at=issued_at,
    )


def certificate_pb(issued: IssuedCertificate) -> pb.Certificate:
    not_before, not_after = _validity(issued)
    message = pb.Certificate(
        serial=serial_hex(issued),
        agency=agency_of(issued),
        kind=_KINDS[issued.kind],
        subject=issued.subject,
        issuer_ca_id=issued.ca_id,
        not_before=timestamp(not_before),
        not_after=timestamp(not_after),
        der=issued.certificate.dump(),
    )
    if issued.revoked_at is not None and issued.revocation_reason is not None:
        message.revoked_at.CopyFrom(timestamp(issued.revoked_at))
        message.revocation_reason = _reason_pb(issued.revocation_reason)
    return message


def indexed_certificate_pb(row: CertificateRow) -> pb.Certificate:
    message = pb.Certificate(
        serial=row.serial,
        agency=row.agency,
        kind=_KINDS[CertificateKind(row.kind)],
        subject=row.subject,
        issuer_ca_id=row.issuer_ca_id,
        not_before=timestamp(row.not_before),
        not_after=timestamp(row.not_after),
        der=row.der,
    )
    if row.revoked_at is not None and row.revocation_reason is not None:
        message.revoked_at.CopyFrom(timestamp(row.revoked_at))
        message.revocation_reason = _reason_pb(RevocationReason(row.revocation_reason))
    return message


def _reason_pb(reason: RevocationReason) -> pb.RevocationReason:
    return next(value for value, known in REASONS.items() if known is reason)


def report_pb(report: VerificationReport) -> pb.SignatureReport:
    message = pb.SignatureReport(
        indication=_INDICATIONS[report.indication],
        sub_indication=report.sub_indication or "",
        signer=report.signer_subject or "",
        chain=report.chain_subjects,
        revocation_status=_REVOCATION_STATUSES[report.revocation_status],
        level=LEVEL_PB[report.level] if report.level is not None else pb.SIGNATURE_LEVEL_UNSPECIFIED,
        details=report.details or "",
    )
    for field_name, moment in (
        ("signing_time", report.signing_time),
        ("timestamp_time", report.timestamp_time),
        ("revocation_time", report.revocation_time),
    ):
        if moment is not None:
            getattr(message, field_name).CopyFrom(timestamp(moment))
    return message
