"""Businesses and bulk import through the real gRPC API, PostgreSQL and Kafka."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from citydata.v1 import common_pb2
from citydata.v1 import registry_pb2 as pb

from kit.grpc_errors import violations_of
from services.registry.cli import import_citizens as import_cli
from services.registry.domain import enterprise_check_digit
from tests.support.kafka_tools import header

if TYPE_CHECKING:
    from conftest import Registry

_prefixes = itertools.count(301_234_567)
HEAD_OFFICE = common_pb2.Address(province_code="079", ward_code="26734", street="1 Đồng Khởi")


def enterprise_code() -> str:
    while True:
        nine = str(next(_prefixes))
        digit = enterprise_check_digit(nine)
        if digit is not None:
            return nine + digit


def business_input(representative: str, name: str = "Công ty TNHH Sài Gòn Xanh") -> pb.BusinessInput:
    return pb.BusinessInput(
        enterprise_code=enterprise_code(),
        name=name,
        legal_representative_id=representative,
        address=HEAD_OFFICE,
        business_lines=["6201", "62020"],
    )


def test_business_lifecycle_with_events_history_and_status_rules(registry: Registry) -> None:
    owner, successor = registry.register(), registry.register()
    stub = registry.stub
    business = stub.RegisterBusiness(pb.RegisterBusinessRequest(business=business_input(owner.registry_id))).business
    assert (business.version, business.status) == (1, pb.BUSINESS_STATUS_ACTIVE)
    suspended = stub.UpdateBusiness(
        pb.UpdateBusinessRequest(
            registry_id=business.registry_id,
            expected_version=1,
            changes=pb.BusinessChanges(
                status=pb.BUSINESS_STATUS_SUSPENDED,
                legal_representative_id=successor.registry_id,
                business_lines=pb.BusinessLineList(codes=["4711"]),
            ),
        )
    ).business
    assert (suspended.version, suspended.legal_representative_id, list(suspended.business_lines)) == (
        2,
        successor.registry_id,
        ["4711"],
    )
    dissolved = stub.UpdateBusiness(
        pb.UpdateBusinessRequest(
            registry_id=business.registry_id,
            expected_version=2,
            changes=pb.BusinessChanges(status=pb.BUSINESS_STATUS_DISSOLVED),
        )
    ).business
    with pytest.raises(grpc.RpcError) as closed:
        stub.UpdateBusiness(
            pb.UpdateBusinessRequest(
                registry_id=business.registry_id, expected_version=3, changes=pb.BusinessChanges(name="Mới")
            )
        )
    assert closed.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    by_code = stub.GetBusiness(pb.GetBusinessRequest(enterprise_code=business.enterprise_code)).business
    assert by_code == dissolved
    history = stub.ListBusinessHistory(pb.ListBusinessHistoryRequest(registry_id=business.registry_id)).versions
    assert [v.status for v in history] == [
        pb.BUSINESS_STATUS_ACTIVE,
        pb.BUSINESS_STATUS_SUSPENDED,
        pb.BUSINESS_STATUS_DISSOLVED,
    ]
    records = registry.events({business.registry_id}, 3)
    assert [header(r, "ce_type") for r in records] == ["business.registered", "business.updated", "business.updated"]
    assert pb.BusinessUpdated.FromString(records[-1].value).business == dissolved

    found = stub.SearchBusinesses(pb.SearchBusinessesRequest(query="sai gon xanh")).results
    assert [r.business.registry_id for r in found] == [business.registry_id]


def test_a_business_needs_an_existing_representative_and_a_free_enterprise_code(registry: Registry) -> None:
    owner = registry.register()
    stub = registry.stub
    with pytest.raises(grpc.RpcError) as unknown:
        stub.RegisterBusiness(pb.RegisterBusinessRequest(business=business_input(str(uuid.uuid4()))))
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations_of(unknown.value)] == ["business.legal_representative_id"]

    first = stub.RegisterBusiness(pb.RegisterBusinessRequest(business=business_input(owner.registry_id))).business
    twin = business_input(owner.registry_id, name="Khác")
    twin.enterprise_code = first.enterprise_code
    with pytest.raises(grpc.RpcError) as taken:
        stub.RegisterBusiness(pb.RegisterBusinessRequest(business=twin))
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert first.registry_id in (taken.value.details() or "")
    assert registry.count("businesses") == 1


def test_import_registers_good_rows_and_reports_bad_ones_by_row_number(registry: Registry) -> None:
    taken = registry.register()
    rows = [registry.citizen_input(full_name=f"Phạm Văn Nhập {chr(65 + i % 26)}") for i in range(2500)]
    rows[9].date_of_birth = "1990-02-30"  # row 10: no such date
    rows[1499].national_id = taken.national_id  # row 1500: already registered
    rows[2100].national_id = rows[2099].national_id  # row 2101: duplicate of row 2100 in the same import
    rows[2499].full_name = ""  # row 2500: required

    def stream(key: str) -> list[pb.ImportCitizensRequest]:
        return [pb.ImportCitizensRequest(idempotency_key=key, rows=rows[i : i + 300]) for i in range(0, len(rows), 300)]

    response = registry.stub.ImportCitizens(iter(stream("batch-7")), timeout=120)
    assert (response.rows_received, response.rows_imported, response.rows_failed) == (2500, 2496, 4)
    assert not response.failed_rows_truncated
    failures = {r.row_number: r.error for r in response.failed_rows}
    assert sorted(failures) == [10, 1500, 2101, 2500]
    assert [v.field for v in failures[10].field_violations] == ["date_of_birth"]
    assert (failures[1500].code, failures[1500].existing_registry_id) == ("ALREADY_EXISTS", taken.registry_id)
    assert failures[2101].code == "ALREADY_EXISTS"
    assert [v.field for v in failures[2500].field_violations] == ["full_name"]
    assert registry.count("citizens") == 2497 and registry.count("citizen_history") == 2497

    replay = registry.stub.ImportCitizens(iter(stream("batch-7")), timeout=120)
    assert replay == response
    assert registry.count("citizens") == 2497

    imported = registry.stub.GetCitizen(pb.GetCitizenRequest(national_id=rows[0].national_id)).citizen
    sample = {imported.registry_id, taken.registry_id}
    records = registry.events(sample, 2)
    assert sorted(header(r, "ce_type") or "" for r in records) == ["citizen.registered", "citizen.registered"]
    assert registry.count("outbox") == 2497


def test_the_import_command_reads_a_csv_and_prints_a_summary(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [registry.citizen_input(full_name=name) for name in ["Hồ Văn Một", "Hồ Thị Hai"]]
    lines = ["national_id,full_name,date_of_birth,gender,province_code,ward_code,street,phone,email"]
    lines += [f"{c.national_id},{c.full_name},{c.date_of_birth},nam,079,26734,1 Lý Tự Trọng,," for c in good]
    lines.append(f"{registry.national_id()},Hồ Văn Ba,1990-03-14,male,079,2673,1 Lý Tự Trọng,,")
    csv_file = tmp_path / "citizens.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    exit_code = import_cli.main([str(csv_file), "--target", registry.target, "--failures", str(tmp_path / "f.csv")])
    printed = capsys.readouterr().out
    assert exit_code == 3  # some rows failed
    assert "rows: 3  imported: 2  failed: 1" in printed
    assert "row 3: INVALID_ARGUMENT: address.ward_code" in printed
    assert "address.ward_code" in (tmp_path / "f.csv").read_text(encoding="utf-8")
    assert registry.count("citizens") == 2
