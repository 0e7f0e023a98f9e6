"""The ApplicantDirectory backed by the registry service (GetCitizen / GetBusiness)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from citydata.v1 import registry_pb2, registry_pb2_grpc

from kit.errors import Unavailable
from kit.tls import secure_channel_to
from services.dossier.domain.applicants import Applicant, Gender
from services.dossier.domain.lifecycle import ApplicantKind

_ABSENT = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}
_GENDERS = {registry_pb2.GENDER_MALE: Gender.MALE, registry_pb2.GENDER_FEMALE: Gender.FEMALE}
MAX_IN_FLIGHT = 64  # concurrent lookups of one import chunk


class RegistryApplicantDirectory:
    def __init__(self, address: str, timeout_seconds: float = 3.0) -> None:
        self._channel = secure_channel_to(address, service="dossier")
        self._stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        self._timeout = timeout_seconds

    def exists(self, kind: ApplicantKind, registry_id: str) -> bool:
        return self.applicant(kind, registry_id) is not None

    def exists_many(self, applicants: Iterable[tuple[ApplicantKind, str]]) -> dict[tuple[ApplicantKind, str], bool]:
        """Several applicants at once (an import chunk's): the lookups run concurrently, at most
        MAX_IN_FLIGHT at a time, so a chunk waits about one round trip per batch, not per row."""
        wanted = list(dict.fromkeys(applicants))
        found: dict[tuple[ApplicantKind, str], bool] = {}
        for start in range(0, len(wanted), MAX_IN_FLIGHT):
            batch = wanted[start : start + MAX_IN_FLIGHT]
            calls = [(applicant, self._lookup(*applicant)) for applicant in batch]
            for applicant, call in calls:
                found[applicant] = _answer(call)
        return found

    def _lookup(self, kind: ApplicantKind, registry_id: str) -> Any:
        if kind is ApplicantKind.CITIZEN:
            request = registry_pb2.GetCitizenRequest(registry_id=registry_id)
            return self._stub.GetCitizen.future(request, timeout=self._timeout)
        business = registry_pb2.GetBusinessRequest(registry_id=registry_id)
        return self._stub.GetBusiness.future(business, timeout=self._timeout)

    def applicant(self, kind: ApplicantKind, registry_id: str) -> Applicant | None:
        try:
            if kind is ApplicantKind.CITIZEN:
                citizen = self._stub.GetCitizen(
                    registry_pb2.GetCitizenRequest(registry_id=registry_id), timeout=self._timeout
                ).citizen
                gender = _GENDERS.get(citizen.gender, Gender.UNKNOWN)
                return Applicant(kind, citizen.full_name, citizen.national_id, gender)
            business = self._stub.GetBusiness(
                registry_pb2.GetBusinessRequest(registry_id=registry_id), timeout=self._timeout
            ).business
            return Applicant(kind, business.name, business.enterprise_code)
        except grpc.RpcError as error:
            if error.code() in _ABSENT:  # type: ignore[attr-defined]
                return None
            raise Unavailable(f"the registry cannot confirm the applicant now ({error.code().name})") from None  # type: ignore[attr-defined]

    def close(self) -> None:
        self._channel.close()


def _answer(call: Any) -> bool:
    try:
        call.result()
    except grpc.RpcError as error:
        if error.code() in _ABSENT:  # type: ignore[attr-defined]
            return False
        raise Unavailable(f"the registry cannot confirm the applicant now ({error.code().name})") from None  # type: ignore[attr-defined]
    return True
