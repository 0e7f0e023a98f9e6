"""RegisterCitizen with arbitrary input: never an internal error, and a refusal writes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from citydata.v1 import common_pb2
from citydata.v1 import registry_pb2 as pb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from conftest import Registry

# Mostly hostile text (controls, NUL, combining marks, astral planes), sometimes a valid value,
# so that requests get past some checks and trip over others.
any_text = st.text(max_size=120)


def sometimes(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(valid, any_text, st.just(""))


citizens = st.builds(
    pb.CitizenInput,
    national_id=sometimes(st.from_regex(r"0790[0-9]{2}[0-9]{6}", fullmatch=True)),
    full_name=sometimes(st.sampled_from(["Nguyễn Văn An", "Lê Thị Hồng", "Đặng  Văn\u200b Dũng"])),
    date_of_birth=sometimes(st.dates().map(lambda d: d.isoformat())),
    gender=st.sampled_from([pb.GENDER_UNSPECIFIED, pb.GENDER_MALE, pb.GENDER_FEMALE, 7]),
    address=st.builds(
        common_pb2.Address,
        province_code=sometimes(st.just("079")),
        ward_code=sometimes(st.from_regex(r"[0-9]{5}", fullmatch=True)),
        street=any_text,
    ),
    phone=sometimes(st.just("+84 90 123 4567")),
    email=sometimes(st.emails()),
)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(citizen=citizens, key=st.one_of(st.just(""), st.text(max_size=140)))
def test_register_citizen_never_fails_internally(registry: Registry, citizen: pb.CitizenInput, key: str) -> None:
    before = registry.count("citizens"), registry.count("outbox")
    try:
        registry.register(citizen, key=key)
    except grpc.RpcError as error:
        assert error.code() in {
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.ALREADY_EXISTS,
            grpc.StatusCode.FAILED_PRECONDITION,
        }, error.details()
        assert (registry.count("citizens"), registry.count("outbox")) == before
