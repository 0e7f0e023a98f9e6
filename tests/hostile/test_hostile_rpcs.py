"""Generated bad input for every RPC of every service, against the real servers.

Whatever a caller sends, a service answers with a status that blames the request (or serves it):
never INTERNAL or UNKNOWN, never a hang, never a crash (health stays SERVING), and a refused call
leaves no row behind in any table but the audit and idempotency ones. Cases per RPC come from
HOSTILE_EXAMPLES (`HOSTILE_EXAMPLES=10000 make hostile` for the long run)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from citydata.v1 import dossier_pb2, gateway_pb2, registry_pb2, signing_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, read_catalogue
from tests.hostile.conftest import Platform, Service
from tests.support import fuzz

EXAMPLES = fuzz.hostile_examples()
# Forwarded through the gateway, each call is already covered directly; fewer cases keep CI short.
FORWARDED_EXAMPLES = max(3, EXAMPLES // 5)
MAX_MESSAGE_BYTES = 8 * 1024 * 1024

# Codes that blame the server, not the request. Nothing is down during these tests, so
# UNAVAILABLE would mean a crash, and DEADLINE_EXCEEDED a hang.
BROKEN = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
CALL_TIMEOUT = 20.0

OWNER = {
    "citydata.v1.RegistryService": "registry",
    "citydata.v1.DossierService": "dossier",
    "citydata.v1.SigningService": "signing",
    "citydata.v1.GatewayService": "gateway",
}


@dataclass(frozen=True)
class Target:
    """One RPC as reached by a caller: directly on its service, or forwarded by the gateway."""

    rpc: fuzz.Rpc
    via: str  # the service the call is sent to

    @property
    def examples(self) -> int:
        forwarded = self.via == "gateway" and OWNER[self.rpc.service] != "gateway"
        return FORWARDED_EXAMPLES if forwarded else EXAMPLES

    def __str__(self) -> str:
        return f"{self.via}:{self.rpc}"


ALL_RPCS = [rpc for module in (registry_pb2, dossier_pb2, signing_pb2, gateway_pb2) for rpc in fuzz.rpcs_of(module)]
TARGETS = [Target(rpc, OWNER[rpc.service]) for rpc in ALL_RPCS] + [
    Target(rpc, "gateway") for rpc in ALL_RPCS if OWNER[rpc.service] != "gateway"
]


@functools.cache
def _procedure_codes() -> tuple[str, ...]:
    return tuple(p.code for p in read_catalogue(SHIPPED_CATALOGUE).procedures[:20])


def hints(platform: Platform) -> dict[str, st.SearchStrategy[str]]:
    """Plausible values by field name, so some requests get past the first validation."""
    ids = st.one_of(st.sampled_from(platform.seeds["registry_id"]), st.uuids().map(str))
    dates = st.dates().map(lambda d: d.isoformat())
    return {
        "national_id": st.one_of(
            st.sampled_from(platform.seeds["national_id"]), st.from_regex(r"0790[0-9]{2}[0-9]{6}", fullmatch=True)
        ),
        "registry_id": ids,
        "applicant_registry_id": ids,
        "legal_representative_id": ids,
        "date_of_birth": dates,
        "from_date": dates,
        "to_date": dates,
        "start_date": dates,
        "end_date": dates,
        "province_code": st.just("079"),
        "ward_code": st.just("26734"),
        "phone": st.sampled_from(["0901234567", "+84 90 123 4567"]),
        "email": st.emails(),
        "procedure_code": st.sampled_from(_procedure_codes()),
        "agency": st.sampled_from(["SXD", "STP"]),
        "agency_code": st.sampled_from(["SXD", "STP"]),
        "enterprise_code": st.from_regex(r"03[0-9]{8}", fullmatch=True),
    }


def service_of(platform: Platform, name: str) -> Service:
    return {service.name: service for service in platform.services()}[name]


def invoke(platform: Platform, target: Target, requests: list[Any]) -> tuple[grpc.StatusCode, str]:
    """Sends the request(s) as raw bytes; the status and message the caller gets."""
    service = service_of(platform, target.via)
    channel = platform.channel(service)
    rpc = target.rpc
    bodies = [fuzz.serialize(r) for r in requests]
    try:
        if rpc.client_streaming:
            stream_call = channel.stream_unary(rpc.path, None, None)
            stream_call(iter(bodies), metadata=tuple(service.metadata), timeout=CALL_TIMEOUT)
        elif rpc.server_streaming:
            for _ in channel.unary_stream(rpc.path, None, None)(
                bodies[0], metadata=tuple(service.metadata), timeout=CALL_TIMEOUT
            ):
                pass
        else:
            channel.unary_unary(rpc.path, None, None)(bodies[0], metadata=tuple(service.metadata), timeout=CALL_TIMEOUT)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""  # type: ignore[attr-defined]
    return grpc.StatusCode.OK, ""


def assert_serving(platform: Platform, service: Service) -> None:
    stub = health_pb2_grpc.HealthStub(platform.channel(service))
    answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING, f"{service.name} is no longer SERVING"


def _requests(target: Target, platform: Platform) -> st.SearchStrategy[list[Any]]:
    one = fuzz.message_or_bytes(target.rpc, hints(platform))
    return st.lists(one, min_size=1, max_size=3) if target.rpc.client_streaming else one.map(lambda r: [r])


def _shown(requests: list[Any]) -> str:
    return repr(requests)[:600]


@pytest.fixture
def checked(platform: Platform, request: pytest.FixtureRequest) -> Iterator[Platform]:
    """After the test, every service must still answer health checks SERVING."""
    yield platform
    for service in platform.services():
        assert_serving(platform, service)


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_hostile_requests_never_break_a_service(checked: Platform, target: Target) -> None:
    platform = checked
    service = service_of(platform, target.via)
    strategy = _requests(target, platform)

    @settings(
        max_examples=target.examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(requests=strategy)
    def hostile_call(requests: list[Any]) -> None:
        before = service.data_counts()
        code, details = invoke(platform, target, requests)
        assert code not in BROKEN, f"{target} answered {code.name} ({details!r}) to {_shown(requests)}"
        if code != grpc.StatusCode.OK:
            after = service.data_counts()
            written = {t: after[t] - before.get(t, 0) for t in after if after[t] != before.get(t, 0)}
            assert not written, f"{target} refused with {code.name} but wrote {written}: {_shown(requests)}"

    hostile_call()


SERVICES = ["registry", "dossier", "signing", "gateway"]


@pytest.mark.parametrize("name", SERVICES)
def test_an_oversized_message_is_refused_and_the_service_stays_up(checked: Platform, name: str) -> None:
    platform = checked
    service = service_of(platform, name)
    rpc = next(t.rpc for t in TARGETS if t.via == name and not t.rpc.client_streaming)
    # One string field of 9 MiB: beyond the 8 MiB limit of every service.
    oversized = fuzz.length_delimited(1, b"x" * (MAX_MESSAGE_BYTES + 1024 * 1024))

    code, details = invoke(platform, Target(rpc, name), [oversized])

    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details)
    assert_serving(platform, service)


# Inputs the generated cases found, kept as fixed cases so they stay checked on every run.
_NEGATIVE_NANOS = {"nanos": -(2**31)}
KNOWN_TRIGGERS: list[tuple[str, str, str, Any]] = [
    ("dossier", "citydata.v1.DossierService", "SubmitDossier", dossier_pb2.SubmitDossierRequest(channel=-(2**31))),  # type: ignore[arg-type]
    ("dossier", "citydata.v1.DossierService", "GetDossier", dossier_pb2.GetDossierRequest(dossier_id="\x00")),
    ("dossier", "citydata.v1.DossierService", "AcceptDossier", dossier_pb2.AcceptDossierRequest(dossier_id="\x00")),
    ("dossier", "citydata.v1.DossierService", "GetProcedure", dossier_pb2.GetProcedureRequest(code="\x00")),
    (
        "dossier",
        "citydata.v1.DossierService",
        "ListDossiers",
        dossier_pb2.ListDossiersRequest(received_to=_NEGATIVE_NANOS),
    ),
    (
        "dossier",
        "citydata.v1.DossierService",
        "GetDueDate",
        dossier_pb2.GetDueDateRequest(procedure_code="1.000001", received_at=_NEGATIVE_NANOS),
    ),
    ("gateway", "citydata.v1.GatewayService", "ListDataAccess", gateway_pb2.ListDataAccessRequest(national_id="\x00")),
    (
        "gateway",
        "citydata.v1.GatewayService",
        "ListDataAccess",
        gateway_pb2.ListDataAccessRequest(national_id="A" + "\u0301" * 500),
    ),
    (
        "gateway",
        "citydata.v1.GatewayService",
        "ListDataAccess",
        gateway_pb2.ListDataAccessRequest(national_id="079090000001", page_token="9" * 400),
    ),
    (
        "gateway",
        "citydata.v1.GatewayService",
        "ListDataAccess",
        gateway_pb2.ListDataAccessRequest(tax_code="0301234567", page_token="\u00b2"),
    ),
    (
        "gateway",
        "citydata.v1.GatewayService",
        "GetBusinessProfile",
        gateway_pb2.GetBusinessProfileRequest(registry_id="\x00"),
    ),
    ("gateway", "citydata.v1.RegistryService", "ImportCitizens", b"\xff\xff\xff\xff"),
    ("gateway", "citydata.v1.DossierService", "ImportDossiers", b"\xff\xff\xff\xff"),
]


@pytest.mark.parametrize(
    ("via", "service", "method", "request_"), KNOWN_TRIGGERS, ids=[f"{t[0]}:{t[2]}" for t in KNOWN_TRIGGERS]
)
def test_known_hostile_inputs_are_refused_cleanly(
    checked: Platform, via: str, service: str, method: str, request_: Any
) -> None:
    rpc = next(r for r in ALL_RPCS if r.service == service and r.name == method)
    target = Target(rpc, via)
    before = service_of(checked, via).data_counts()

    code, details = invoke(checked, target, [request_])

    assert code not in BROKEN, f"{target} answered {code.name} ({details!r})"
    assert code == grpc.StatusCode.OK or service_of(checked, via).data_counts() == before
