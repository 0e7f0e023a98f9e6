"""The signing service as the apology workflow uses it: an agency's SEAL certificate, PAdES B-T.

The dossier service calls on behalf of the agency (`x-citydata-agency` = the dossier's agency), as
the gateway does after mTLS; signing believes the header because the call proves it comes from the
dossier service (its mTLS client certificate, OU=DOSSIER, or in development a caller assertion,
kit.service_identity). An outage (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) becomes
`kit.errors.Unavailable`, which the consumer runner retries without limit; every other refusal
(unknown serial, an agency that does not sign, …) is a `SigningRefused`, which ends on the dead-letter queue.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from citydata.v1 import signing_pb2 as pb
from citydata.v1.signing_pb2_grpc import SigningServiceStub

from kit.errors import Unavailable
from kit.service_identity import asserting_channel
from kit.tls import secure_channel_to

AGENCY_METADATA = "x-citydata-agency"
DOSSIER_SERVICE = "DOSSIER"  # how signing knows this caller (its client certificate's OU)
DEFAULT_ADDRESS = "127.0.0.1:50053"
_OUTAGES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
MAX_SUBJECT_NAME = 64


class SigningRefused(Exception):
    """The signing service answered, and the answer is no: retrying will not change it."""


@dataclass(frozen=True)
class SignedPdf:
    pdf: bytes
    serial: str
    signed_at: datetime


class SigningClient:
    def __init__(self, address: str = DEFAULT_ADDRESS, timeout_seconds: float = 30.0) -> None:
        self._channel = secure_channel_to(address, service="dossier")
        self._stub = SigningServiceStub(asserting_channel(self._channel, DOSSIER_SERVICE))
        self._timeout = timeout_seconds

    def issue_seal(self, agency: str, agency_name: str) -> str:
        """A SEAL certificate for the agency's letters; the idempotency key makes a retry after a
        crash return the same certificate instead of issuing a second one."""
        request = pb.IssueCertificateRequest(
            agency=agency,
            subject_name=agency_name[:MAX_SUBJECT_NAME].strip() or agency,
            kind=pb.CERTIFICATE_KIND_SEAL,
            idempotency_key=f"dossier-apology-seal-{agency}",
        )
        response = self._call(self._stub.IssueCertificate, request, agency)
        return str(response.certificate.serial)

    def sign_pdf(self, agency: str, serial: str, pdf: bytes, reason: str) -> SignedPdf:
        request = pb.SignDocumentRequest(
            serial=serial,
            document=pdf,
            format=pb.SIGNATURE_FORMAT_PADES,
            level=pb.SIGNATURE_LEVEL_B_T,
            reason=reason,
            # the same bytes signed again (a redelivery before commit) get the same signature back
            idempotency_key=f"apology-{hashlib.sha256(pdf).hexdigest()}",
        )
        response = self._call(self._stub.SignDocument, request, agency)
        return SignedPdf(response.signed_pdf, response.serial, response.signed_at.ToDatetime(tzinfo=UTC))

    def _call(self, method: Any, request: Any, agency: str) -> Any:
        try:
            return method(request, metadata=[(AGENCY_METADATA, agency)], timeout=self._timeout)
        except grpc.RpcError as error:
            code = error.code()  # type: ignore[attr-defined]
            detail = error.details()  # type: ignore[attr-defined]
            if code in _OUTAGES:
                raise Unavailable(f"signing service unavailable ({code.name}): {detail}") from None
            raise SigningRefused(f"signing service refused ({code.name}): {detail}") from None

    def close(self) -> None:
        self._channel.close()
