"""No secret, key or personal identifier in logs or error messages.

A realistic flow through the gateway and the services (citizens registered with national ids,
phones and emails; a dossier submitted; a certificate issued and a document signed; and the
usual mistakes: duplicates, bad input, unknown ids, stale versions). Every log line the platform
wrote since it started (start-up included, rendered by the services' own JSON formatter, extras
and tracebacks included) and every error message returned are scanned."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import grpc
from citydata.v1 import common_pb2, dossier_pb2, registry_pb2, signing_pb2
from google.protobuf.message import Message

from services.registry.domain import Gender
from tests.hostile.conftest import DEV_TOKEN, KEYSTORE_PASSWORD, Platform, Service
from tests.hostile.test_hostile_rpcs import _procedure_codes
from tests.integration.registry.conftest import national_id

PEOPLE = [
    ("Phạm Thị Thanh Hương", "0912345678", "huong.pham.private@example.vn"),
    ("Võ Minh Khôi", "0987654321", "khoi.vo.secret@example.vn"),
]
CREDENTIALS_IN_URL = re.compile(r"[a-z+]+://[^/\s:@\"]+:[^@\s\"/]+@")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


@dataclass
class Flow:
    platform: Platform
    errors: list[str] = field(default_factory=list)
    personal: list[str] = field(default_factory=list)

    def call(self, service: Service, path: str, request: Message, response: type[Message]) -> Any:
        stub = self.platform.channel(service).unary_unary(path, lambda m: m.SerializeToString(), response.FromString)
        try:
            return stub(request, metadata=tuple(service.metadata), timeout=20)
        except grpc.RpcError as error:
            self.errors.append(f"{path} {error.code().name}: {error.details()}")  # type: ignore[attr-defined]
            return None


def _citizen(name: str, phone: str, email: str, nid: str) -> registry_pb2.CitizenInput:
    return registry_pb2.CitizenInput(
        national_id=nid,
        full_name=name,
        date_of_birth="1988-07-21",
        gender=registry_pb2.GENDER_FEMALE,
        address=common_pb2.Address(province_code="079", ward_code="26734", street="45 Nguyễn Huệ"),
        phone=phone,
        email=email,
    )


def run_flow(flow: Flow) -> None:
    gateway, registry = flow.platform.gateway, flow.platform.registry
    rpc = "/citydata.v1.RegistryService/"
    registered: list[registry_pb2.Citizen] = []
    for name, phone, email in PEOPLE:
        nid = national_id(1988, Gender.FEMALE)
        flow.personal += [name, phone, "+84" + phone[1:], email, nid]
        answer = flow.call(
            gateway,
            rpc + "RegisterCitizen",
            registry_pb2.RegisterCitizenRequest(citizen=_citizen(name, phone, email, nid)),
            registry_pb2.RegisterCitizenResponse,
        )
        if answer is not None:
            registered.append(answer.citizen)
        # the same person again: a duplicate national id
        flow.call(
            gateway,
            rpc + "RegisterCitizen",
            registry_pb2.RegisterCitizenRequest(citizen=_citizen(name, phone, email, nid)),
            registry_pb2.RegisterCitizenResponse,
        )
    first_name, first_phone, first_email = PEOPLE[0]
    unknown_nid = national_id(1975, Gender.FEMALE)
    flow.personal.append(unknown_nid)
    by_unknown_nid = registry_pb2.GetCitizenRequest(national_id=unknown_nid)
    bad_email = first_email.replace("@", "@@")
    mistakes: list[tuple[Service, str, Message, type[Message]]] = [
        (
            registry,
            "RegisterCitizen",
            registry_pb2.RegisterCitizenRequest(
                citizen=_citizen(first_name, first_phone, bad_email, national_id(1988, Gender.FEMALE))
            ),
            registry_pb2.RegisterCitizenResponse,
        ),
        (
            registry,
            "RegisterCitizen",
            registry_pb2.RegisterCitizenRequest(citizen=_citizen(first_name, "09" + first_phone, first_email, "0790")),
            registry_pb2.RegisterCitizenResponse,
        ),
        (gateway, "GetCitizen", by_unknown_nid, registry_pb2.GetCitizenResponse),
        (registry, "GetCitizen", by_unknown_nid, registry_pb2.GetCitizenResponse),
        (
            registry,
            "SearchCitizens",
            registry_pb2.SearchCitizensRequest(query=first_email),
            registry_pb2.SearchCitizensResponse,
        ),
    ]
    if registered:
        mistakes.append(
            (
                gateway,
                "UpdateCitizen",
                registry_pb2.UpdateCitizenRequest(
                    registry_id=registered[0].registry_id,
                    expected_version=registered[0].version + 7,
                    changes=registry_pb2.CitizenChanges(email=first_email, phone=first_phone),
                ),
                registry_pb2.UpdateCitizenResponse,
            )
        )
    for service, method, request, response in mistakes:
        flow.call(service, rpc + method, request, response)
    _dossier_and_signing(flow, registered)


def _dossier_and_signing(flow: Flow, registered: list[registry_pb2.Citizen]) -> None:
    applicant = registered[0].registry_id if registered else "missing"
    for code in _procedure_codes()[:2]:
        flow.call(
            flow.platform.gateway,
            "/citydata.v1.DossierService/SubmitDossier",
            dossier_pb2.SubmitDossierRequest(
                procedure_code=code,
                applicant_registry_id=applicant,
                applicant_kind=dossier_pb2.DOSSIER_APPLICANT_KIND_CITIZEN,
                channel=dossier_pb2.DOSSIER_CHANNEL_ONLINE,
            ),
            dossier_pb2.SubmitDossierResponse,
        )
    signing = flow.platform.signing
    issued = flow.call(
        signing,
        "/citydata.v1.SigningService/IssueCertificate",
        signing_pb2.IssueCertificateRequest(
            agency="SXD", subject_name="Con dấu Sở Xây dựng", kind=signing_pb2.CERTIFICATE_KIND_SEAL
        ),
        signing_pb2.IssueCertificateResponse,
    )
    serial = issued.certificate.serial if issued is not None else "00"
    for document_serial in (serial, "DEADBEEF"):
        flow.call(
            signing,
            "/citydata.v1.SigningService/SignDocument",
            signing_pb2.SignDocumentRequest(
                serial=document_serial,
                document=b"%PDF-1.7 quyet dinh",
                format=signing_pb2.SIGNATURE_FORMAT_CADES_DETACHED,
            ),
            signing_pb2.SignDocumentResponse,
        )


def _leaks(texts: list[str], secrets: dict[str, str], patterns: dict[str, re.Pattern[str]]) -> list[str]:
    found: list[str] = []
    for text in texts:
        for what, secret in secrets.items():
            if secret and secret in text:
                found.append(f"{what} in: {text[:400]}")
        for what, pattern in patterns.items():
            if pattern.search(text):
                found.append(f"{what} in: {text[:400]}")
    return found


def _secrets(flow: Flow) -> dict[str, str]:
    named = {f"personal data {value!r}": value for value in flow.personal}
    named.update({"keystore password": KEYSTORE_PASSWORD, "dev token": DEV_TOKEN})
    return named


PATTERNS = {"credentials in a URL": CREDENTIALS_IN_URL, "a PEM private key": PRIVATE_KEY}


def test_the_flow_really_ran(platform: Platform) -> None:
    flow = Flow(platform)
    run_flow(flow)
    assert any("ALREADY_EXISTS" in e for e in flow.errors), flow.errors  # the duplicates were refused
    assert len(platform.logs.lines) > 20


def test_no_secret_or_personal_data_in_logs(platform: Platform) -> None:
    flow = Flow(platform)
    run_flow(flow)

    leaks = _leaks(platform.logs.lines, _secrets(flow), PATTERNS)

    assert not leaks, "\n".join(leaks[:20])


def test_no_secret_or_personal_data_in_error_messages(platform: Platform) -> None:
    flow = Flow(platform)
    run_flow(flow)

    leaks = _leaks(flow.errors, _secrets(flow), PATTERNS)

    assert not leaks, "\n".join(leaks[:20])
