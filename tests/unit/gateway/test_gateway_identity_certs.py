"""The agency code is the certificate's subject OU; client-auth certificates only."""

from __future__ import annotations

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from kit.errors import Unauthenticated
from services.gateway.api.identity import agency_from_certificate
from services.gateway.cli.devpki import issue_agency_cert, new_ca

CA = new_ca()


def test_the_agency_is_the_subject_ou() -> None:
    assert agency_from_certificate(issue_agency_cert(CA, "STP").certificate) == "STP"


@pytest.mark.parametrize(
    ("agency", "usage", "problem"),
    [
        (None, ExtendedKeyUsageOID.CLIENT_AUTH, "exactly one agency"),
        ("so tu phap", ExtendedKeyUsageOID.CLIENT_AUTH, "not an agency code"),
        ("STP", ExtendedKeyUsageOID.SERVER_AUTH, "client authentication"),
    ],
)
def test_certificates_that_do_not_name_one_agency_for_client_use_are_refused(
    agency: str | None, usage: object, problem: str
) -> None:
    with pytest.raises(Unauthenticated, match=problem):
        agency_from_certificate(issue_agency_cert(CA, agency, usage=usage).certificate)  # type: ignore[arg-type]
