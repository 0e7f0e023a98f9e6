"""An in-process RFC 3161 time-stamping unit whose key stays in the keystore.

pyHanko's DummyTimeStamper needs the TSA key in memory (and RSA), so we build the TSTInfo
ourselves and let a pyHanko `Signer` (PKCS#11 or file) wrap it in CMS SignedData with the
ESS signing-certificate-v2 attribute (RFC 5816).
"""

from __future__ import annotations

import secrets

from asn1crypto import cms, core, tsp, x509
from pyhanko.sign.signers import Signer
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps.api import TimeStamper

from kit.clock import Clock
from services.signing.domain.certificates import check_digest_algorithm

# Our TSA policy OID, under the UUID-derived arc 2.25 (no registration needed).
TSA_POLICY_OID = "2.25.158463211402357125374049158911716829731"


class InProcessTimeStamper(TimeStamper):
    """Answers time-stamp requests locally with the TSA signer and the injected clock."""

    def __init__(self, tsa_signer: Signer, clock: Clock, accuracy_seconds: int = 1) -> None:
        super().__init__(include_nonce=True)
        self._signer = tsa_signer
        self._clock = clock
        self._accuracy_seconds = accuracy_seconds

    @property
    def tsa_certificate(self) -> x509.Certificate:
        cert = self._signer.signing_cert
        assert cert is not None
        return cert

    def request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        raise NotImplementedError("use async_request_tsa_response")

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        requested_policy = req["req_policy"].native
        if requested_policy is not None and requested_policy != TSA_POLICY_OID:
            return _rejection("unaccepted_policy")
        token = await self.async_issue_token(req)
        return tsp.TimeStampResp(
            {"status": tsp.PKIStatusInfo({"status": tsp.PKIStatus("granted")}), "time_stamp_token": token}
        )

    async def async_issue_token(self, req: tsp.TimeStampReq) -> cms.ContentInfo:
        imprint: tsp.MessageImprint = req["message_imprint"]
        check_digest_algorithm(str(imprint["hash_algorithm"]["algorithm"].native))
        gen_time = self._clock.now().replace(microsecond=0)
        tst_info: dict[str, object] = {
            "version": "v1",
            "policy": TSA_POLICY_OID,
            "message_imprint": imprint,
            "serial_number": secrets.randbits(120),
            "gen_time": gen_time,
            "accuracy": {"seconds": self._accuracy_seconds},
            "tsa": x509.GeneralName(name="directory_name", value=self.tsa_certificate.subject),
        }
        if req["nonce"].native is not None:
            tst_info["nonce"] = req["nonce"]
        encap = cms.EncapsulatedContentInfo(
            {
                "content_type": "tst_info",
                "content": cms.ParsableOctetString(tsp.TSTInfo(tst_info).dump()),
            }
        )
        return await self._signer.async_sign_general_data(
            encap,
            "sha256",
            detached=False,
            use_cades=True,  # adds ESS signing-certificate-v2 and signing-time
            signed_attr_settings=PdfCMSSignedAttributes(signing_time=gen_time),
        )


class _StatusOnlyResp(core.Sequence):
    # asn1crypto's TimeStampResp makes the token mandatory; RFC 3161 omits it on rejection.
    _fields = [("status", tsp.PKIStatusInfo)]


def _rejection(failure: str) -> tsp.TimeStampResp:
    status = tsp.PKIStatusInfo({"status": tsp.PKIStatus("rejection"), "fail_info": {failure}})
    return tsp.TimeStampResp.load(_StatusOnlyResp({"status": status}).dump())
