"""A throwaway certificate authority for development and tests (the city PKI stands in for it in
production): a CA, a gateway server certificate and agency client certificates (OU = agency code).

    python -m services.gateway.cli.devpki DIR AGENCY [AGENCY ...]

writes DIR/ca.pem, DIR/gateway.pem + gateway.key and DIR/<agency>.pem + .key; then run the gateway
with GATEWAY_TLS_CERT=DIR/gateway.pem GATEWAY_TLS_KEY=DIR/gateway.key GATEWAY_CLIENT_CA=DIR/ca.pem.
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=30)


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ho Chi Minh City"),
    ]
    if unit is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def new_ca(common_name: str = "CityData Development CA") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    certificate = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(certificate, key)


def _leaf(
    ca: Issued, subject: x509.Name, usage: x509.ObjectIdentifier, alt_names: list[x509.GeneralName] | None = None
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca.certificate.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def issue_server_cert(ca: Issued, hostname: str = "localhost") -> Issued:
    alt_names: list[x509.GeneralName] = [
        x509.DNSName(hostname),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    return _leaf(ca, _name(hostname), ExtendedKeyUsageOID.SERVER_AUTH, alt_names)


def issue_agency_cert(
    ca: Issued,
    agency: str | None,
    system: str = "agency-system",
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
) -> Issued:
    """A client certificate for one system of `agency` (its code goes in the subject OU; None: no OU)."""
    return _leaf(ca, _name(system, unit=agency), usage)


def main() -> None:
    parser = argparse.ArgumentParser(description="development CA and certificates for the gateway")
    parser.add_argument("directory", type=Path)
    parser.add_argument("agencies", nargs="+")
    args = parser.parse_args()
    ca = new_ca()
    ca.write(args.directory, "ca")
    issue_server_cert(ca).write(args.directory, "gateway")
    for agency in args.agencies:
        issue_agency_cert(ca, agency, system=f"{agency.lower()}-system").write(args.directory, agency)
    print(f"CA, gateway and {len(args.agencies)} agency certificate(s) written to {args.directory}")


if __name__ == "__main__":
    main()
