"""The registry, as the tasks service sees it: GetCitizen by national id, GetBusiness by tax code."""

from __future__ import annotations

import grpc
from citydata.v1 import registry_pb2, registry_pb2_grpc

from kit.errors import Unavailable
from kit.tls import secure_channel_to

_ABSENT = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}


class RegistrySenders:
    def __init__(self, address: str, timeout_seconds: float = 3.0) -> None:
        self._channel = secure_channel_to(address, service="tasks")
        self._stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        self._timeout = timeout_seconds

    def citizen_registry_id(self, national_id: str) -> str | None:
        try:
            reply = self._stub.GetCitizen(
                registry_pb2.GetCitizenRequest(national_id=national_id), timeout=self._timeout
            )
        except grpc.RpcError as error:
            return self._absent_or_raise(error)
        return reply.citizen.registry_id

    def business_registry_id(self, tax_code: str) -> str | None:
        try:
            reply = self._stub.GetBusiness(
                registry_pb2.GetBusinessRequest(enterprise_code=tax_code), timeout=self._timeout
            )
        except grpc.RpcError as error:
            return self._absent_or_raise(error)
        return reply.business.registry_id

    @staticmethod
    def _absent_or_raise(error: grpc.RpcError) -> None:
        code = error.code()  # type: ignore[attr-defined]
        if code in _ABSENT:
            return None
        raise Unavailable(f"the registry cannot confirm the sender now ({code.name})") from None

    def close(self) -> None:
        self._channel.close()
