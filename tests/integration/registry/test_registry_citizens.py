"""Citizens through the real gRPC API, PostgreSQL and Kafka."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest
from citydata.v1 import common_pb2
from citydata.v1 import registry_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from kit.grpc_errors import violations_of
from tests.support.kafka_tools import header

if TYPE_CHECKING:
    from conftest import Registry


def error_of(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def resource_name(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
            info = error_details_pb2.ResourceInfo()
            detail.Unpack(info)
            return info.resource_name
    raise AssertionError("no ResourceInfo in the error")


def test_every_committed_change_has_exactly_its_event(registry: Registry) -> None:
    citizen = registry.register()
    stub = registry.stub
    updated = stub.UpdateCitizen(
        pb.UpdateCitizenRequest(
            registry_id=citizen.registry_id,
            expected_version=1,
            changes=pb.CitizenChanges(full_name="Nguyễn Văn Anh", phone=""),
        ),
        timeout=10,
    ).citizen
    moved = stub.UpdateCitizen(
        pb.UpdateCitizenRequest(
            registry_id=citizen.registry_id,
            expected_version=2,
            changes=pb.CitizenChanges(
                address=common_pb2.Address(province_code="079", ward_code="27001", street="5 Nguyễn Huệ")
            ),
        ),
        timeout=10,
    ).citizen
    assert (updated.version, updated.full_name, updated.phone) == (2, "Nguyễn Văn Anh", "")
    assert moved.version == 3 and moved.full_name == "Nguyễn Văn Anh" and moved.address.ward_code == "27001"

    fetched = stub.GetCitizen(pb.GetCitizenRequest(national_id=citizen.national_id), timeout=10).citizen
    assert fetched == moved
    history = stub.ListCitizenHistory(pb.ListCitizenHistoryRequest(registry_id=citizen.registry_id)).versions
    assert [v.version for v in history] == [1, 2, 3]
    assert [v.full_name for v in history] == ["Nguyễn Văn An", "Nguyễn Văn Anh", "Nguyễn Văn Anh"]

    records = registry.events({citizen.registry_id}, 3)
    assert [header(r, "ce_type") for r in records] == ["citizen.registered", "citizen.updated", "citizen.updated"]
    registered = pb.CitizenRegistered.FromString(records[0].value).citizen
    assert registered == citizen
    assert [pb.CitizenUpdated.FromString(r.value).citizen for r in records[1:]] == [updated, moved]
    assert all(header(r, "ce_subject") == citizen.registry_id for r in records)


def test_a_taken_national_id_names_the_existing_citizen_and_writes_nothing(registry: Registry) -> None:
    first = registry.register()
    again = registry.citizen_input(full_name="Trần Thị Bích", national_id=first.national_id)
    error = error_of(lambda: registry.register(again))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert resource_name(error) == first.registry_id
    assert first.registry_id in (error.details() or "")
    assert registry.count("citizens") == 1 and registry.count("outbox") == 1


def test_a_national_id_change_to_a_taken_one_is_refused(registry: Registry) -> None:
    first, second = registry.register(), registry.register()
    error = error_of(
        lambda: registry.stub.UpdateCitizen(
            pb.UpdateCitizenRequest(
                registry_id=second.registry_id,
                expected_version=1,
                changes=pb.CitizenChanges(national_id=first.national_id),
            )
        )
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert resource_name(error) == first.registry_id


def test_the_same_idempotency_key_returns_the_first_result_and_registers_once(registry: Registry) -> None:
    request = registry.citizen_input()
    first = registry.register(request, key="form-42")
    replay = registry.register(request, key="form-42")
    assert replay == first
    assert registry.count("citizens") == 1
    assert len(registry.events({first.registry_id}, 1)) == 1

    other = registry.citizen_input()
    error = error_of(lambda: registry.register(other, key="form-42"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION  # key reused for a different request


def test_a_stale_version_is_aborted_and_changes_nothing(registry: Registry) -> None:
    citizen = registry.register()
    stub = registry.stub
    stub.UpdateCitizen(
        pb.UpdateCitizenRequest(
            registry_id=citizen.registry_id, expected_version=1, changes=pb.CitizenChanges(full_name="Lê Văn Tám")
        )
    )
    error = error_of(
        lambda: stub.UpdateCitizen(
            pb.UpdateCitizenRequest(
                registry_id=citizen.registry_id, expected_version=1, changes=pb.CitizenChanges(full_name="Lê Văn Chín")
            )
        )
    )
    assert error.code() == grpc.StatusCode.ABORTED
    current = stub.GetCitizen(pb.GetCitizenRequest(registry_id=citizen.registry_id)).citizen
    assert (current.version, current.full_name) == (2, "Lê Văn Tám")
    assert registry.count("citizen_history") == 2 and registry.count("outbox") == 2


def test_invalid_input_reports_every_bad_field_and_writes_nothing(registry: Registry) -> None:
    bad = registry.citizen_input(
        full_name="An 2",
        date_of_birth="14/03/1990",
        gender=pb.GENDER_UNSPECIFIED,
        phone="12345",
        address=common_pb2.Address(province_code="79", ward_code="26734", street="12 Lê Lợi"),
    )
    error = error_of(lambda: registry.register(bad))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = sorted(field for field, _ in violations_of(error))
    assert fields == [
        "citizen.address.province_code",
        "citizen.date_of_birth",
        "citizen.full_name",
        "citizen.gender",
        "citizen.phone",
    ]
    assert registry.count("citizens") == 0 and registry.count("outbox") == 0


def test_bad_update_and_lookup_requests_are_invalid_argument(registry: Registry) -> None:
    stub = registry.stub
    error = error_of(lambda: stub.UpdateCitizen(pb.UpdateCitizenRequest(registry_id="nope")))
    assert sorted(f for f, _ in violations_of(error)) == ["changes", "expected_version", "registry_id"]
    error = error_of(lambda: stub.GetCitizen(pb.GetCitizenRequest()))
    assert [f for f, _ in violations_of(error)] == ["lookup"]
    error = error_of(lambda: stub.GetCitizen(pb.GetCitizenRequest(national_id="079\x00")))
    assert [f for f, _ in violations_of(error)] == ["national_id"]
    missing = error_of(lambda: stub.GetCitizen(pb.GetCitizenRequest(national_id=registry.national_id())))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


def test_search_ignores_accents_and_case_and_pages_without_duplicates(registry: Registry) -> None:
    names = [
        "Nguyễn Văn An",
        "NGUYỄN VĂN AN BÌNH",
        "Nguyễn Thị Đào",
        "Đặng Văn Dũng",
        "Trần Văn An",
        *[f"Nguyễn Hữu {given}" for given in ["Phúc", "Lộc", "Thọ", "Tài", "Đức", "Định", "Hải", "Hà"]],
    ]
    ids = {name: registry.register(registry.citizen_input(full_name=name)).registry_id for name in names}
    stub = registry.stub

    found = stub.SearchCitizens(pb.SearchCitizensRequest(query="nguyen van an")).results
    assert [r.citizen.full_name for r in found] == ["Nguyễn Văn An", "NGUYỄN VĂN AN BÌNH"]
    assert found[0].score == 1.0 and found[1].score < 1.0

    with_d = {r.citizen.full_name for r in stub.SearchCitizens(pb.SearchCitizensRequest(query="d")).results}
    assert with_d == {"Nguyễn Thị Đào", "Đặng Văn Dũng", "Nguyễn Hữu Đức", "Nguyễn Hữu Định"}
    assert [r.citizen.full_name for r in stub.SearchCitizens(pb.SearchCitizensRequest(query="DANG dung")).results] == [
        "Đặng Văn Dũng"
    ]

    pages: list[list[str]] = []
    token = ""
    while True:
        response = stub.SearchCitizens(pb.SearchCitizensRequest(query="nguyen", page_size=3, page_token=token))
        pages.append([r.citizen.registry_id for r in response.results])
        token = response.next_page_token
        if not token:
            break
    seen = [registry_id for page in pages for registry_id in page]
    nguyen = {registry_id for name, registry_id in ids.items() if name.lower().startswith("nguy")}
    assert len(seen) == len(set(seen)) == len(nguyen) and set(seen) == nguyen
    assert [len(p) for p in pages] == [3, 3, 3, 2]

    first_page = stub.SearchCitizens(pb.SearchCitizensRequest(query="nguyen", page_size=3))
    assert (
        stub.SearchCitizens(
            pb.SearchCitizensRequest(query="nguyen", page_size=3, page_token=first_page.next_page_token)
        )
        .results[0]
        .citizen.registry_id
        == pages[1][0]
    )  # the same token gives the same page again
    error = error_of(
        lambda: stub.SearchCitizens(pb.SearchCitizensRequest(query="tran", page_token=first_page.next_page_token))
    )
    assert [f for f, _ in violations_of(error)] == ["page_token"]
