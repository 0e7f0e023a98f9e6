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
MAX_IN_FLIGHT = 64  # concurrent lookups of one import chunk, on a registry without CheckRegistered
CHECK_BATCH = 1_000  # ids of each kind per CheckRegistered call: the registry's limit


class RegistryApplicantDirectory:
    def __init__(self, address: str, timeout_seconds: float = 3.0) -> None:
        self._channel = secure_channel_to(address, service="dossier")
        self._stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        self._timeout = timeout_seconds
        self._batch_checks = True  # until the registry answers UNIMPLEMENTED

    def exists(self, kind: ApplicantKind, registry_id: str) -> bool:
        return self.applicant(kind, registry_id) is not None

    def exists_many(self, applicants: Iterable[tuple[ApplicantKind, str]]) -> dict[tuple[ApplicantKind, str], bool]:
        """Several applicants at once (an import chunk's): one CheckRegistered call per
        CHECK_BATCH of each kind. A registry too old to have CheckRegistered is asked one
        GetCitizen/GetBusiness per applicant instead, at most MAX_IN_FLIGHT at a time."""
        wanted = list(dict.fromkeys(applicants))
        if self._batch_checks:
            try:
                return self._check_registered(wanted)
            except grpc.RpcError as error:
                if error.code() is not grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                    raise _unavailable(error) from None
                self._batch_checks = False
        return self._lookup_each(wanted)

    def _check_registered(self, wanted: list[tuple[ApplicantKind, str]]) -> dict[tuple[ApplicantKind, str], bool]:
        citizens = [registry_id for kind, registry_id in wanted if kind is ApplicantKind.CITIZEN]
        businesses = [registry_id for kind, registry_id in wanted if kind is not ApplicantKind.CITIZEN]
        registered: set[tuple[ApplicantKind, str]] = set()
        for start in range(0, max(len(citizens), len(businesses)), CHECK_BATCH):
            request = registry_pb2.CheckRegisteredRequest(
                citizen_registry_ids=citizens[start : start + CHECK_BATCH],
                business_registry_ids=businesses[start : start + CHECK_BATCH],
            )
            answer = self._stub.CheckRegistered(request, timeout=self._timeout)
            registered.update((ApplicantKind.CITIZEN, found) for found in answer.registered_citizen_ids)
            registered.update((ApplicantKind.BUSINESS, found) for found in answer.registered_business_ids)
        return {applicant: applicant in registered for applicant in wanted}

    def _lookup_each(self, wanted: list[tuple[ApplicantKind, str]]) -> dict[tuple[ApplicantKind, str], bool]:
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
            raise _unavailable(error) from None

    def close(self) -> None:
        self._channel.close()


def _answer(call: Any) -> bool:
    try:
        call.result()
    except grpc.RpcError as error:
        if error.code() in _ABSENT:  # type: ignore[attr-defined]
            return False
        raise _unavailable(error) from None
    return True


def _unavailable(error: grpc.RpcError) -> Unavailable:
    return Unavailable(f"the registry cannot confirm the applicant now ({error.code().name})")  # type: ignore[attr-defined]
