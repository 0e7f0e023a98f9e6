"""The pure verdict policy and the algorithm/input checks of the signing domain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kit.errors import InvalidArgument
from services.signing.domain.certificates import (
    CertificateKind,
    Indication,
    KeyAlgorithm,
    RevocationReason,
    RevocationStatus,
    VerificationFacts,
    agency_ca_id,
    check_digest_algorithm,
    check_precomputed_digest,
    check_rsa_key_size,
    crl_url,
    decide_verdict,
    parse_key_algorithm,
    parse_revocation_reason,
    parse_signer_kind,
)

T0 = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)


def _facts(**overrides: object) -> VerificationFacts:
    base: dict[str, object] = {"intact": True, "signature_valid": True}
    base.update(overrides)
    return VerificationFacts(**base)  # type: ignore[arg-type]


def test_clean_signature_passes() -> None:
    verdict = decide_verdict(_facts(timestamp_time=T0, timestamp_valid=True))
    assert (verdict.indication, verdict.sub_indication) == (Indication.TOTAL_PASSED, None)
    assert verdict.revocation_status is RevocationStatus.GOOD


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"intact": False}, "HASH_FAILURE"),
        ({"coverage_ok": False}, "HASH_FAILURE"),
        ({"signature_valid": False}, "SIG_CRYPTO_FAILURE"),
        ({"format_problem": "truncated"}, "FORMAT_FAILURE"),
    ],
)
def test_broken_signatures_fail(overrides: dict[str, object], expected: str) -> None:
    verdict = decide_verdict(_facts(**overrides))
    assert (verdict.indication, verdict.sub_indication) == (Indication.TOTAL_FAILED, expected)


def test_trust_problems_are_indeterminate() -> None:
    verdict = decide_verdict(_facts(trust_problem="NO_CERTIFICATE_CHAIN_FOUND"))
    assert (verdict.indication, verdict.sub_indication) == (
        Indication.INDETERMINATE,
        "NO_CERTIFICATE_CHAIN_FOUND",
    )


def test_invalid_time_stamp_is_indeterminate_even_if_signature_is_fine() -> None:
    verdict = decide_verdict(_facts(timestamp_valid=False))
    assert verdict.indication is Indication.INDETERMINATE


def test_time_stamp_before_revocation_keeps_signature_valid() -> None:
    facts = _facts(
        trust_problem="REVOKED_NO_POE",
        revocation_time=T0,
        timestamp_time=T0 - timedelta(seconds=1),
        timestamp_valid=True,
    )
    verdict = decide_verdict(facts)
    assert verdict.indication is Indication.TOTAL_PASSED
    assert verdict.revocation_status is RevocationStatus.REVOKED


def test_time_stamp_at_or_after_revocation_fails() -> None:
    facts = _facts(trust_problem="REVOKED_NO_POE", revocation_time=T0, timestamp_time=T0, timestamp_valid=True)
    verdict = decide_verdict(facts)
    assert (verdict.indication, verdict.sub_indication) == (Indication.TOTAL_FAILED, "REVOKED")


def test_claimed_time_after_revocation_fails_without_time_stamp() -> None:
    facts = _facts(trust_problem="REVOKED_NO_POE", revocation_time=T0, claimed_signing_time=T0 + timedelta(hours=1))
    assert decide_verdict(facts).sub_indication == "REVOKED"


def test_claimed_time_before_revocation_is_not_proof() -> None:
    facts = _facts(trust_problem="REVOKED_NO_POE", revocation_time=T0, claimed_signing_time=T0 - timedelta(days=1))
    verdict = decide_verdict(facts)
    assert (verdict.indication, verdict.sub_indication) == (Indication.INDETERMINATE, "REVOKED_NO_POE")


@pytest.mark.parametrize("weak", ["RSA_1024", "DSA", "ECDSA_P192", ""])
def test_weak_or_unknown_key_algorithms_are_refused(weak: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_key_algorithm(weak)
    assert raised.value.violations[0].field == "algorithm"


def test_allowed_key_algorithms_parse_case_insensitively() -> None:
    assert parse_key_algorithm("ecdsa_p256") is KeyAlgorithm.ECDSA_P256
    assert parse_key_algorithm("RSA_PSS_3072").rsa_bits == 3072


@pytest.mark.parametrize("weak", ["sha1", "md5", "sha224"])
def test_weak_digests_are_refused(weak: str) -> None:
    with pytest.raises(InvalidArgument):
        check_digest_algorithm(weak)


def test_strong_digests_are_normalised() -> None:
    assert check_digest_algorithm("SHA-256") == "sha256"
    assert check_digest_algorithm("sha512") == "sha512"


def test_rsa_keys_below_2048_bits_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        check_rsa_key_size(1024)
    assert check_rsa_key_size(2048) == 2048


def test_precomputed_digest_must_be_sha256_sized() -> None:
    with pytest.raises(InvalidArgument):
        check_precomputed_digest(b"\x00" * 20)
    assert check_precomputed_digest(b"\x00" * 32) == b"\x00" * 32


def test_agency_codes_and_crl_urls() -> None:
    assert agency_ca_id("SXD") == "agency-sxd"
    assert crl_url("http://127.0.0.1:8053/crl/", "agency-sxd") == "http://127.0.0.1:8053/crl/agency-sxd.crl"
    with pytest.raises(InvalidArgument):
        agency_ca_id("s x d")
    with pytest.raises(InvalidArgument):
        crl_url("http://x", "../etc/passwd")


def test_signer_kind_and_revocation_reason_parsing() -> None:
    assert parse_signer_kind("seal") is CertificateKind.SEAL
    assert parse_revocation_reason("key_compromise") is RevocationReason.KEY_COMPROMISE
    with pytest.raises(InvalidArgument):
        parse_signer_kind("ROOT_CA")
    with pytest.raises(InvalidArgument):
        parse_revocation_reason("because")
