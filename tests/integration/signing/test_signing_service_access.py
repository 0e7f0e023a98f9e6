"""Who may sign, issue and revoke; what a malformed request gets. A refused call records nothing."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from citydata.v1 import signing_pb2 as pb
from citydata.v1.signing_pb2_grpc import SigningServiceStub

from kit.clock import ManualClock
from kit.grpc_errors import violations_of
from kit.runtime import start_runtime
from kit.service_identity import CallerAssertions, service_key
from services.gateway.cli.devpki import issue_agency_cert, issue_server_cert, new_ca
from services.signing.api.servicer import TOPIC
from services.signing.app import Signing, build_host
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.pki import Pki
from services.signing.store import metadata as store_metadata
from services.signing.store import tables as store_tables
from tests.integration.signing.conftest import SigningService, error_right

pytestmark = pytest.mark.softhsm

DOCUMENT = b"%PDF-1.7 not really, but bytes to sign"
RECORDS = ("signing_audit", "outbox", "idempotency_keys")


def _records(service: SigningService) -> dict[str, int]:
    return {table: service.count(table) for table in RECORDS}


def _refused(call: object, request: object, metadata: list[tuple[str, str]] | None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, metadata=metadata, timeout=30)  # type: ignore[operator]
    return raised.value


def test_an_agency_cannot_sign_with_another_agencys_key_and_nothing_is_recorded(
    signing_service: SigningService,
) -> None:
    stp_seal = signing_service.issue("STP")
    before = _records(signing_service)
    request = pb.SignDocumentRequest(
        serial=stp_seal.serial, document=DOCUMENT, format=pb.SIGNATURE_FORMAT_CADES_DETACHED, idempotency_key="x-1"
    )

    by_sxd = _refused(signing_service.stub.SignDocument, request, signing_service.identity("SXD"))
    by_operator = _refused(signing_service.stub.SignDocument, request, signing_service.identity("CITY"))

    assert by_sxd.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert error_right(by_sxd) == "sign:STP"
    assert by_operator.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert _records(signing_service) == before


def test_calls_without_an_identity_are_unauthenticated(signing_service: SigningService) -> None:
    seal = signing_service.issue("SXD")
    sign = pb.SignDocumentRequest(serial=seal.serial, document=DOCUMENT, format=pb.SIGNATURE_FORMAT_CADES_DETACHED)
    issue = pb.IssueCertificateRequest(agency="SXD", subject_name="X", kind=pb.CERTIFICATE_KIND_SEAL)

    anonymous = _refused(signing_service.stub.SignDocument, sign, None)
    malformed = _refused(signing_service.stub.SignDocument, sign, [("x-citydata-agency", "sxd; drop table")])
    anonymous_issue = _refused(signing_service.stub.IssueCertificate, issue, None)

    for error in (anonymous, malformed, anonymous_issue):
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    # trust anchors and verification are public
    authorities = signing_service.stub.GetCaCertificates(pb.GetCaCertificatesRequest(), timeout=30)
    assert [ca.ca_id for ca in authorities.certificate_authorities][:2] == ["root", "tsa"]
    assert {"agency-sxd", "agency-stp"} <= {ca.ca_id for ca in authorities.certificate_authorities}


def test_a_forged_agency_header_is_refused_unless_the_gateway_or_dossier_proves_it_sent_it(
    signing_service: SigningService,
) -> None:
    issue = pb.IssueCertificateRequest(agency="SXD", subject_name="Mạo danh", kind=pb.CERTIFICATE_KIND_SEAL)
    listing = pb.ListCertificatesRequest(agency="SXD")
    path = "/citydata.v1.SigningService/IssueCertificate"
    wrong_key = CallerAssertions("GATEWAY", b"not-the-service-key-at-all").proof("SXD", path)
    untrusted = CallerAssertions("STP", service_key()).proof("SXD", path)
    stale = CallerAssertions("GATEWAY", service_key(), clock=lambda: time.time() - 3600).proof("SXD", path)
    for_another_agency = CallerAssertions("GATEWAY", service_key()).proof("STP", path)
    before = _records(signing_service)

    refusals = [
        _refused(signing_service.direct.IssueCertificate, issue, [("x-citydata-agency", "SXD")]),
        _refused(signing_service.direct.ListCertificates, listing, [("x-citydata-agency", "SXD")]),
        *(
            _refused(signing_service.direct.IssueCertificate, issue, [("x-citydata-agency", "SXD"), *proof])
            for proof in (wrong_key, untrusted, stale, for_another_agency)
        ),
    ]

    assert [error.code() for error in refusals] == [grpc.StatusCode.UNAUTHENTICATED] * 6  # type: ignore[attr-defined]
    assert "GATEWAY" in (refusals[0].details() or "")  # type: ignore[attr-defined]
    assert _records(signing_service) == before
    proven = signing_service.stub.ListCertificates(listing, metadata=signing_service.identity("SXD"), timeout=30)
    assert proven is not None


def test_every_signing_agency_of_the_directory_gets_its_ca_on_demand(signing_service: SigningService) -> None:
    """The session's PKI was bootstrapped for SXD and STP only: the others' CAs come on first use."""
    department = signing_service.issue("STC", "Sở Tài chính")
    ward = signing_service.issue("P-BENNGHE", "Ủy ban nhân dân Phường Bến Nghé")
    no_seal = pb.IssueCertificateRequest(agency="TTCDS", subject_name="X", kind=pb.CERTIFICATE_KIND_SEAL)
    unknown = pb.IssueCertificateRequest(agency="SOTUPHAP", subject_name="X", kind=pb.CERTIFICATE_KIND_SEAL)
    does_not_sign = _refused(signing_service.stub.IssueCertificate, no_seal, signing_service.identity("TTCDS"))
    not_listed = _refused(signing_service.stub.IssueCertificate, unknown, signing_service.identity("CITY"))

    assert (department.agency, department.issuer_ca_id) == ("STC", "agency-stc")
    assert (ward.agency, ward.issuer_ca_id) == ("P-BENNGHE", "agency-p-bennghe")
    authorities = signing_service.stub.GetCaCertificates(pb.GetCaCertificatesRequest(), timeout=30)
    assert {"agency-stc", "agency-p-bennghe"} <= {ca.ca_id for ca in authorities.certificate_authorities}
    assert does_not_sign.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert not_listed.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert violations_of(not_listed) == [("agency", "agency SOTUPHAP is not in the agency directory")]


def test_issuing_and_revoking_needs_the_agency_itself_or_the_city_operator(signing_service: SigningService) -> None:
    by_operator = signing_service.issue("STP", "Trần Văn Bình", caller="CITY")
    foreign_issue = pb.IssueCertificateRequest(agency="STP", subject_name="Mạo danh", kind=pb.CERTIFICATE_KIND_SEAL)
    foreign_revoke = pb.RevokeCertificateRequest(serial=by_operator.serial)

    issue_denied = _refused(signing_service.stub.IssueCertificate, foreign_issue, signing_service.identity("SXD"))
    revoke_denied = _refused(signing_service.stub.RevokeCertificate, foreign_revoke, signing_service.identity("SXD"))
    revoked = signing_service.stub.RevokeCertificate(
        pb.RevokeCertificateRequest(serial=by_operator.serial, reason=pb.REVOCATION_REASON_SUPERSEDED),
        metadata=signing_service.identity("STP"),
        timeout=30,
    ).certificate
    listed = signing_service.stub.ListCertificates(
        pb.ListCertificatesRequest(agency="STP"), metadata=signing_service.identity("SXD"), timeout=30
    ).certificates

    assert by_operator.agency == "STP" and by_operator.kind == pb.CERTIFICATE_KIND_SEAL
    assert (issue_denied.code(), error_right(issue_denied)) == (grpc.StatusCode.PERMISSION_DENIED, "issue:STP")  # type: ignore[attr-defined]
    assert (revoke_denied.code(), error_right(revoke_denied)) == (grpc.StatusCode.PERMISSION_DENIED, "revoke:STP")  # type: ignore[attr-defined]
    assert revoked.HasField("revoked_at") and revoked.revocation_reason == pb.REVOCATION_REASON_SUPERSEDED
    assert [(c.serial, c.revocation_reason) for c in listed] == [(by_operator.serial, pb.REVOCATION_REASON_SUPERSEDED)]


def test_malformed_sign_requests_name_every_bad_field(signing_service: SigningService) -> None:
    seal = signing_service.issue("SXD")
    sign = signing_service.stub.SignDocument
    sxd = signing_service.identity("SXD")

    empty = _refused(
        sign, pb.SignDocumentRequest(serial=seal.serial, document=b"", format=pb.SIGNATURE_FORMAT_PADES), sxd
    )
    short_digest = _refused(
        sign,
        pb.SignDocumentRequest(
            serial=seal.serial, sha256_digest=b"\x01" * 20, format=pb.SIGNATURE_FORMAT_CADES_DETACHED
        ),
        sxd,
    )
    # an enum number outside the contract is refused by the platform before the service's own rules
    unknown_format = _refused(sign, pb.SignDocumentRequest(serial="zz", document=DOCUMENT, format=9), sxd)  # type: ignore[arg-type]
    unspecified_format = _refused(sign, pb.SignDocumentRequest(serial="zz", document=DOCUMENT), sxd)

    for error in (empty, short_digest, unknown_format, unspecified_format):
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert [field for field, _ in violations_of(empty)] == ["document"]
    assert violations_of(short_digest) == [("sha256_digest", "a SHA-256 digest has 32 bytes, got 20")]
    assert [field for field, _ in violations_of(unknown_format)] == ["format"]
    assert sorted(field for field, _ in violations_of(unspecified_format)) == ["format", "serial"]


def test_list_certificates_pages_through_one_agency(signing_service: SigningService) -> None:
    issued = sorted(signing_service.issue("SXD", f"Cán bộ {n}").serial for n in range(3))
    signing_service.issue("STP")
    list_ = signing_service.stub.ListCertificates
    sxd = signing_service.identity("SXD")

    first = list_(pb.ListCertificatesRequest(agency="SXD", page_size=2), metadata=sxd, timeout=30)
    second = list_(
        pb.ListCertificatesRequest(agency="SXD", page_size=2, page_token=first.next_page_token),
        metadata=sxd,
        timeout=30,
    )
    wrong_token = _refused(list_, pb.ListCertificatesRequest(agency="STP", page_token=first.next_page_token), sxd)

    assert [c.serial for c in first.certificates] + [c.serial for c in second.certificates] == issued
    assert first.next_page_token and not second.next_page_token
    assert [field for field, _ in violations_of(wrong_token)] == ["page_token"]


def test_in_production_only_a_gateway_or_dossier_client_certificate_speaks_for_an_agency(
    pg_database: str,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
    pki: Pki,
    engine: SignatureEngine,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    city = new_ca("City PKI (test)")
    server = issue_server_cert(city)
    files = {"ca": city.write(tmp_path, "ca"), "server": server.write(tmp_path, "server")}
    clients = {name: issue_agency_cert(city, name, system=name.lower()) for name in ("GATEWAY", "DOSSIER", "STP")}
    monkeypatch.setenv("CITYDATA_ENV", "production")
    monkeypatch.setenv("SIGNING_TLS_CERT", str(files["server"][0]))
    monkeypatch.setenv("SIGNING_TLS_KEY", str(files["server"][1]))
    monkeypatch.setenv("SIGNING_TLS_CLIENT_CA", str(files["ca"][0]))
    monkeypatch.setenv("SIGNING_DATABASE_URL", pg_database)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    runtime = start_runtime("signing", store_metadata, store_tables, [TOPIC])
    host, _http = build_host(runtime, Signing(pki, engine, clock), address="127.0.0.1:0", http_port=0)
    host.drain_delay_seconds = 0
    port = host.start()
    listing = pb.ListCertificatesRequest(agency="STP")

    def list_as(client: str, proof: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
        issued = clients[client]
        credentials = grpc.ssl_channel_credentials(city.cert_pem, issued.key_pem, issued.cert_pem)
        with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            try:
                SigningServiceStub(channel).ListCertificates(
                    listing, metadata=[("x-citydata-agency", "STP"), *proof], timeout=30
                )
            except grpc.RpcError as error:
                return error.code()  # type: ignore[attr-defined,no-any-return]
        return grpc.StatusCode.OK

    try:
        assertion = CallerAssertions("GATEWAY", b"a-development-key-0123456789").proof("STP", "/x")
        outcomes = {name: list_as(name) for name in clients}
        asserted_only = list_as("STP", assertion)
    finally:
        host.stop()
        runtime.engine.dispose()

    assert outcomes == {
        "GATEWAY": grpc.StatusCode.OK,
        "DOSSIER": grpc.StatusCode.OK,
        "STP": grpc.StatusCode.UNAUTHENTICATED,  # an agency's own certificate: it must go through the gateway
    }
    assert asserted_only == grpc.StatusCode.UNAUTHENTICATED  # assertions count for nothing in production
