"""Sign (CAdES detached, PAdES) and verify signatures against the city's PKI.

`SignatureEngine` is what a gRPC servicer calls: every public method takes and returns plain
values (bytes, ints, enums, `VerificationReport`) and raises only `kit.errors` for bad input.
Each sync method has an `async_` twin for asyncio servers.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any, TypeVar

from asn1crypto import cms, tsp
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.ades.report import AdESSubIndic
from pyhanko.sign.signers import Signer
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.validation import async_validate_detached_cms, async_validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.generic_cms import cms_basic_validation, collect_timing_info
from pyhanko.sign.validation.status import (
    PdfSignatureStatus,
    SignatureCoverageLevel,
    StandardCMSSignatureStatus,
)
from pyhanko_certvalidator import ValidationContext

from kit.clock import Clock
from kit.errors import FailedPrecondition, FieldViolation, InvalidArgument
from services.signing.crypto.pki import IssuedCertificate, Pki
from services.signing.crypto.tsa import InProcessTimeStamper
from services.signing.domain.certificates import (
    SIGNER_KINDS,
    Indication,
    SignatureLevel,
    VerificationFacts,
    VerificationReport,
    check_precomputed_digest,
    decide_verdict,
)

T = TypeVar("T")


# pyHanko hands each PKCS#11 call to the loop's default executor. asyncio.run() per signature
# created a loop, an executor thread and a shutdown thread every time (profiled: a tenth of a
# letter); each calling thread (gRPC's pool of workers, a benchmark) keeps one loop and one
# executor thread instead. A loop closes its executor when it is collected with its thread.
_LOOPS = threading.local()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    loop: asyncio.AbstractEventLoop | None = getattr(_LOOPS, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1, thread_name_prefix="signing-token"))
        _LOOPS.loop = loop
    return loop.run_until_complete(coro)


@dataclass(frozen=True)
class SignedPdf:
    pdf: bytes
    field_name: str


# A signature's CMS grows by a few bytes from one letter to the next (ECDSA integers, the
# time-stamp's serial and nonce); pyHanko's own estimate keeps a 50% margin for the same reason.
_RESERVE_MARGIN = 1.5


class SignatureEngine:
    """Signs and verifies. What repeats per letter is built once per certificate and kept:
    the pyHanko signer (keyed by serial: a serial's key and certificate never change), the
    time-stamping unit (keyed by the TSA certificate's serial) and the space a PAdES signature
    needs. Revocation is read from the PKI on every call and evicts the certificate's signer."""

    def __init__(self, pki: Pki, clock: Clock) -> None:
        self.pki = pki
        self.clock = clock
        self._lock = threading.Lock()
        self._signers: dict[int, Signer] = {}
        self._timestamper: tuple[int, InProcessTimeStamper] | None = None
        self._reserved: dict[tuple[int, SignatureLevel], int] = {}

    # --- time-stamping -----------------------------------------------------------------

    def timestamper(self) -> InProcessTimeStamper:
        tsa = self.pki.tsa_record()
        with self._lock:  # built under the lock: it touches certificate objects shared by threads
            if self._timestamper is None or self._timestamper[0] != tsa.serial:
                signer = self.pki.keystore.signer_for(tsa.key_label, tsa.certificate, self.pki.chain_for(tsa))
                self._timestamper = (tsa.serial, InProcessTimeStamper(_loaded(signer), self.clock))
            return self._timestamper[1]

    async def async_time_stamp(self, request_der: bytes) -> bytes:
        """Answer a DER RFC 3161 TimeStampReq with a DER TimeStampResp (for a /tsa endpoint)."""
        try:
            request = tsp.TimeStampReq.load(request_der)
            request["message_imprint"]["hashed_message"].native  # noqa: B018 - parse it now
        except (ValueError, TypeError) as exc:
            raise InvalidArgument([FieldViolation("request", f"not a TimeStampReq: {exc}")]) from None
        response = await self.timestamper().async_request_tsa_response(request)
        return bytes(response.dump())

    def time_stamp(self, request_der: bytes) -> bytes:
        # Called from the HTTP endpoint's short-lived request threads: a loop of its own, closed after.
        return asyncio.run(self.async_time_stamp(request_der))

    # --- CAdES -------------------------------------------------------------------------

    async def async_sign_cades_digest(
        self, serial: int, sha256_digest: bytes, level: SignatureLevel = SignatureLevel.B_T
    ) -> bytes:
        """A detached CAdES signature (DER ContentInfo) over content known by its SHA-256."""
        check_precomputed_digest(sha256_digest)
        signer = self._signer(serial)
        signed = await signer.async_sign(
            data_digest=sha256_digest,
            digest_algorithm="sha256",
            use_pades=True,  # CAdES attribute set: signing-certificate-v2 + signing-time
            is_pdf_sig=False,
            timestamper=self._timestamper_for(level),
            signed_attr_settings=PdfCMSSignedAttributes(signing_time=self.clock.now()),
        )
        return bytes(signed.dump())

    async def async_sign_cades(self, serial: int, content: bytes, level: SignatureLevel = SignatureLevel.B_T) -> bytes:
        return await self.async_sign_cades_digest(serial, hashlib.sha256(content).digest(), level)

    def sign_cades(self, serial: int, content: bytes, level: SignatureLevel = SignatureLevel.B_T) -> bytes:
        return _run(self.async_sign_cades(serial, content, level))

    def sign_cades_digest(self, serial: int, sha256_digest: bytes, level: SignatureLevel = SignatureLevel.B_T) -> bytes:
        return _run(self.async_sign_cades_digest(serial, sha256_digest, level))

    async def async_verify_cades(
        self, signature: bytes, content: bytes | None = None, sha256_digest: bytes | None = None
    ) -> VerificationReport:
        """Verify a detached CAdES signature against the content or its SHA-256 digest."""
        if (content is None) == (sha256_digest is None):
            raise InvalidArgument([FieldViolation("content", "give exactly one of content or sha256_digest")])
        signed_data = _parse_signed_data(signature)
        if signed_data is None:
            return _format_failure("not a CMS SignedData structure")
        context = self._validation_context()
        try:
            if content is not None:
                status = await async_validate_detached_cms(content, signed_data, signer_validation_context=context)
            else:
                assert sha256_digest is not None
                status = await _validate_detached_digest(
                    signed_data, check_precomputed_digest(sha256_digest, "sha256_digest"), context
                )
        except SignatureValidationError as exc:
            return _report_from_error(exc)
        level = SignatureLevel.B_T if status.timestamp_validity is not None else SignatureLevel.B_B
        return _report(status, level)

    def verify_cades(
        self, signature: bytes, content: bytes | None = None, sha256_digest: bytes | None = None
    ) -> VerificationReport:
        return _run(self.async_verify_cades(signature, content, sha256_digest))

    # --- PAdES -------------------------------------------------------------------------

    async def async_sign_pades(
        self,
        serial: int,
        pdf: bytes,
        level: SignatureLevel = SignatureLevel.B_T,
        reason: str | None = None,
    ) -> SignedPdf:
        """Add a PAdES signature (incremental update) to `pdf`."""
        signer = self._signer(serial)
        try:
            writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
            existing = len(writer.prev.embedded_signatures)  # the writer's reader: no second parse
        except (PdfError, ValueError) as exc:
            raise InvalidArgument([FieldViolation("pdf", f"not a readable PDF: {exc}")]) from None
        field_name = f"Signature{existing + 1}"
        metadata = signers.PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason,
        )
        timestamper = self._timestamper_for(level)
        reserved = await self._bytes_reserved(serial, signer, level, timestamper)
        pdf_signer = signers.PdfSigner(metadata, signer=signer, timestamper=timestamper)
        output = await pdf_signer.async_sign_pdf(writer, bytes_reserved=reserved, output=BytesIO())
        return SignedPdf(output.getvalue(), field_name)

    async def _bytes_reserved(
        self, serial: int, signer: Signer, level: SignatureLevel, timestamper: InProcessTimeStamper | None
    ) -> int:
        """Room for the signature in the PDF (hex, so twice its DER length), from one dry run per
        certificate and level instead of one per letter (pyHanko's default)."""
        key = (serial, level)
        if key not in self._reserved:
            dry = await signer.async_sign(
                hashlib.sha256(b"").digest(),
                "sha256",
                use_pades=True,
                dry_run=True,
                timestamper=timestamper,
                signed_attr_settings=PdfCMSSignedAttributes(signing_time=self.clock.now()),
            )
            needed = int(len(dry.dump()) * 2 * _RESERVE_MARGIN)
            self._reserved[key] = needed + needed % 2
        return self._reserved[key]

    def sign_pades(
        self, serial: int, pdf: bytes, level: SignatureLevel = SignatureLevel.B_T, reason: str | None = None
    ) -> SignedPdf:
        return _run(self.async_sign_pades(serial, pdf, level, reason))

    async def async_verify_pades(self, pdf: bytes) -> list[VerificationReport]:
        """One report per signature in the PDF, in document order; [] if it has none."""
        try:
            embedded = PdfFileReader(BytesIO(pdf), strict=False).embedded_regular_signatures
        except (PdfError, ValueError) as exc:
            return [_format_failure(f"not a readable PDF: {exc}")]
        reports = []
        for signature in embedded:
            try:
                status = await async_validate_pdf_signature(
                    signature, signer_validation_context=self._validation_context()
                )
            except SignatureValidationError as exc:
                reports.append(_report_from_error(exc))
                continue
            except (PdfError, ValueError) as exc:
                reports.append(_format_failure(str(exc)))
                continue
            level = SignatureLevel.B_T if status.timestamp_validity is not None else SignatureLevel.B_B
            reports.append(_report(status, level, coverage_ok=_covers_document(status)))
        return reports

    def verify_pades(self, pdf: bytes) -> list[VerificationReport]:
        return _run(self.async_verify_pades(pdf))

    # --- internals ---------------------------------------------------------------------

    def _signer(self, serial: int) -> Signer:
        issued = self.pki.certificate(serial)  # read every time: another replica may have revoked it
        try:
            self._check_usable(issued)
        except FailedPrecondition:
            self._forget(serial)
            raise
        with self._lock:  # built under the lock: it touches certificate objects shared by threads
            if serial not in self._signers:
                chain = self.pki.chain_for(issued)
                signer = self.pki.keystore.signer_for(issued.key_label, issued.certificate, chain)
                self._signers[serial] = _loaded(signer)
            return self._signers[serial]

    def _forget(self, serial: int) -> None:
        with self._lock:
            self._signers.pop(serial, None)
            for key in [key for key in self._reserved if key[0] == serial]:
                del self._reserved[key]

    def _check_usable(self, issued: IssuedCertificate) -> None:
        if issued.kind not in SIGNER_KINDS:
            raise FailedPrecondition(f"certificate {issued.serial:x} is not a signer certificate", "NOT_A_SIGNER")
        if issued.revoked_at is not None:
            raise FailedPrecondition(f"certificate {issued.serial:x} is revoked", "CERTIFICATE_REVOKED")
        validity = issued.certificate["tbs_certificate"]["validity"]
        now = self.clock.now()
        if not validity["not_before"].native <= now <= validity["not_after"].native:
            raise FailedPrecondition(f"certificate {issued.serial:x} is not valid now", "CERTIFICATE_EXPIRED")

    def _timestamper_for(self, level: SignatureLevel) -> InProcessTimeStamper | None:
        return self.timestamper() if level is SignatureLevel.B_T else None

    def _validation_context(self) -> ValidationContext:
        """Our root as the only trust anchor and our own CRLs; nothing is fetched."""
        intermediates = [self.pki.ca_certificate(ca_id) for ca_id in self.pki.ca_ids()]
        return ValidationContext(
            trust_roots=[self.pki.root_certificate()],
            other_certs=[*intermediates, self.pki.tsa_record().certificate],
            crls=self.pki.all_crls(),
            allow_fetching=False,
            revocation_mode="hard-fail",
            moment=self.clock.now(),
        )


def _loaded(signer: Signer) -> Signer:
    """Load a PKCS#11 signer's key handle and certificates now, synchronously: pyHanko would
    otherwise do it on first use under an asyncio.Event of that call's event loop, which a
    signer shared by threads (each with its own loop) must not depend on."""
    _ = signer.signing_cert, signer.cert_registry
    return signer


def _parse_signed_data(signature: bytes) -> cms.SignedData | None:
    try:
        content_info = cms.ContentInfo.load(signature)
        if content_info["content_type"].native != "signed_data":
            return None
        signed_data = content_info["content"]
        if not isinstance(signed_data, cms.SignedData) or len(signed_data["signer_infos"]) != 1:
            return None
        return signed_data
    except (ValueError, TypeError):
        return None


async def _validate_detached_digest(
    signed_data: cms.SignedData, digest: bytes, context: ValidationContext
) -> StandardCMSSignatureStatus:
    # Mirrors pyhanko's async_validate_detached_cms, which only accepts the content itself.
    signer_info = signed_data["signer_infos"][0]
    if signer_info["digest_algorithm"]["algorithm"].native != "sha256":
        raise SignatureValidationError("the signature does not use SHA-256", ades_subindication=None)
    kwargs = await collect_timing_info(signer_info, ts_validation_context=context, raw_digest=digest)
    kwargs = await cms_basic_validation(
        signed_data,
        raw_digest=digest,
        validation_context=context,
        status_kwargs=kwargs,
        key_usage_settings=StandardCMSSignatureStatus.default_usage_constraints(None),
    )
    return StandardCMSSignatureStatus(**kwargs)


def _covers_document(status: PdfSignatureStatus) -> bool:
    if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return True
    return status.coverage == SignatureCoverageLevel.ENTIRE_REVISION and bool(status.docmdp_ok)


def _report(status: StandardCMSSignatureStatus, level: SignatureLevel, coverage_ok: bool = True) -> VerificationReport:
    ts = status.timestamp_validity
    ts_valid = None if ts is None else bool(ts.intact and ts.valid and ts.trusted)
    ts_time = ts.timestamp if ts is not None and ts_valid else None
    revocation_time: datetime | None = status.revocation_details.revocation_date if status.revocation_details else None
    facts = VerificationFacts(
        intact=status.intact,
        signature_valid=status.valid,
        trust_problem=_sub_name(status.trust_problem_indic),
        revocation_time=revocation_time,
        claimed_signing_time=status.signer_reported_dt,
        timestamp_time=ts_time,
        timestamp_valid=ts_valid,
        coverage_ok=coverage_ok,
    )
    verdict = decide_verdict(facts)
    path = status.validation_path
    chain = [str(c.subject.human_friendly) for c in reversed(list(path))] if path is not None else []
    return VerificationReport(
        indication=verdict.indication,
        sub_indication=verdict.sub_indication,
        signer_subject=str(status.signing_cert.subject.human_friendly),
        signing_time=status.signer_reported_dt,
        timestamp_time=ts_time,
        chain_subjects=chain,
        revocation_status=verdict.revocation_status,
        revocation_time=revocation_time,
        level=level,
    )


def _sub_name(sub: AdESSubIndic | None) -> str | None:
    return None if sub is None else str(sub.standard_name)


def _report_from_error(exc: SignatureValidationError) -> VerificationReport:
    """pyHanko gave up before producing a status (e.g. no signer certificate in the CMS)."""
    sub = exc.ades_subindication
    if sub is None:
        return _format_failure(exc.failure_message)
    indication = {
        "PASSED": Indication.TOTAL_PASSED,
        "FAILED": Indication.TOTAL_FAILED,
    }.get(sub.status.name, Indication.INDETERMINATE)
    return VerificationReport(
        indication=indication,
        sub_indication=_sub_name(sub),
        signer_subject=None,
        signing_time=None,
        timestamp_time=None,
        details=exc.failure_message,
    )


def _format_failure(details: str) -> VerificationReport:
    verdict = decide_verdict(VerificationFacts(intact=False, signature_valid=False, format_problem=details))
    return VerificationReport(
        indication=verdict.indication,
        sub_indication=verdict.sub_indication,
        signer_subject=None,
        signing_time=None,
        timestamp_time=None,
        details=details,
    )
