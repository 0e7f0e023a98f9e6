"""Build certificates and CRLs with asn1crypto, signing them through a `Keystore`.

cryptography's builders want the private key in memory; ours stays in the token, so we build
the TBS structures here and let the keystore sign their DER.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import core, crl, keys, x509

from services.signing.crypto.keystore import Keystore, signature_mechanism
from services.signing.domain.certificates import CertificateKind, RevocationReason

_UTC_TIME_LIMIT = 2050  # RFC 5280 §4.1.2.5: UTCTime before 2050, GeneralizedTime from then on


def asn1_time(moment: datetime) -> x509.Time:
    moment = moment.replace(microsecond=0)
    if moment.year < _UTC_TIME_LIMIT:
        return x509.Time({"utc_time": moment})
    return x509.Time({"general_time": moment})


@dataclass(frozen=True)
class Issuer:
    """Who signs: the issuer's name, key identifier and key label in the keystore."""

    name: x509.Name
    key_identifier: bytes
    key_label: str


@dataclass(frozen=True)
class CertificateSpec:
    serial: int
    subject: x509.Name
    public_key: keys.PublicKeyInfo
    kind: CertificateKind
    not_before: datetime
    not_after: datetime
    crl_url: str | None  # where the issuer's CRL is published; None for the self-signed root


def _extension(extn_id: str, value: object, critical: bool = False) -> dict[str, object]:
    return {"extn_id": extn_id, "critical": critical, "extn_value": value}


def _kind_extensions(kind: CertificateKind) -> list[dict[str, object]]:
    if kind in (CertificateKind.ROOT_CA, CertificateKind.ISSUING_CA):
        # Issuing CAs sign only end-entity certificates.
        path_len = {"path_len_constraint": 0} if kind is CertificateKind.ISSUING_CA else {}
        return [
            _extension("basic_constraints", {"ca": True, **path_len}, critical=True),
            _extension("key_usage", x509.KeyUsage({"key_cert_sign", "crl_sign"}), critical=True),
        ]
    usage = _extension("key_usage", x509.KeyUsage({"digital_signature", "non_repudiation"}), critical=True)
    end_entity = _extension("basic_constraints", {"ca": False}, critical=True)
    if kind is CertificateKind.TSA:
        # RFC 3161 §2.3: exactly one EKU, id-kp-timeStamping, marked critical.
        return [end_entity, usage, _extension("extended_key_usage", ["time_stamping"], critical=True)]
    return [end_entity, usage]


def build_certificate(spec: CertificateSpec, issuer: Issuer, keystore: Keystore) -> x509.Certificate:
    extensions = [
        *_kind_extensions(spec.kind),
        _extension("key_identifier", spec.public_key.sha1),
        _extension("authority_key_identifier", {"key_identifier": issuer.key_identifier}),
    ]
    if spec.crl_url is not None:
        extensions.append(
            _extension(
                "crl_distribution_points",
                [
                    {
                        "distribution_point": x509.DistributionPointName(
                            name="full_name",
                            value=[x509.GeneralName(name="uniform_resource_identifier", value=spec.crl_url)],
                        )
                    }
                ],
            )
        )
    issuer_public_key = keystore.public_key(issuer.key_label)
    mechanism = signature_mechanism(issuer_public_key)
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": spec.serial,
            "signature": mechanism,
            "issuer": issuer.name,
            "validity": {
                "not_before": asn1_time(spec.not_before),
                "not_after": asn1_time(spec.not_after),
            },
            "subject": spec.subject,
            "subject_public_key_info": spec.public_key,
            "extensions": extensions,
        }
    )
    signature, used_mechanism = keystore.sign_raw(issuer.key_label, tbs.dump())
    return x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": used_mechanism, "signature_value": signature}
    )


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: RevocationReason


def build_crl(
    issuer: Issuer,
    keystore: Keystore,
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
    revoked: Sequence[RevokedEntry],
) -> crl.CertificateList:
    mechanism = signature_mechanism(keystore.public_key(issuer.key_label))
    fields: dict[str, object] = {
        "version": "v2",
        "signature": mechanism,
        "issuer": issuer.name,
        "this_update": asn1_time(this_update),
        "next_update": asn1_time(next_update),
        "crl_extensions": [
            _extension("crl_number", core.Integer(crl_number)),
            _extension("authority_key_identifier", {"key_identifier": issuer.key_identifier}),
        ],
    }
    if revoked:
        fields["revoked_certificates"] = [
            {
                "user_certificate": entry.serial,
                "revocation_date": asn1_time(entry.revoked_at),
                "crl_entry_extensions": [_extension("crl_reason", entry.reason.value)],
            }
            for entry in sorted(revoked, key=lambda e: e.serial)
        ]
    tbs = crl.TbsCertList(fields)
    signature, used_mechanism = keystore.sign_raw(issuer.key_label, tbs.dump())
    return crl.CertificateList({"tbs_cert_list": tbs, "signature_algorithm": used_mechanism, "signature": signature})
