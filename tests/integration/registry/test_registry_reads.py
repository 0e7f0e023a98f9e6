"""GetCitizen's one-round-trip read path and the filtered citizen search, through the real gRPC API
and PostgreSQL; the search migration on a database that already holds citizens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import pytest
from alembic import command
from citydata.v1 import common_pb2
from citydata.v1 import registry_pb2 as pb
from sqlalchemy import text

from kit.db import make_engine
from kit.grpc_errors import violations_of
from kit.migrations import alembic_config
from services.registry import domain
from services.registry.store import metadata
from services.registry.store.rows import search_prefixes

if TYPE_CHECKING:
    from conftest import Registry

SEARCH_MIGRATION = "7c1e5a9f04b2"


def error_of(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_a_read_sees_every_committed_change_at_once(registry: Registry) -> None:
    stub = registry.stub
    citizen = registry.register()
    by_id = pb.GetCitizenRequest(registry_id=citizen.registry_id)
    assert stub.GetCitizen(by_id).citizen == citizen
    for version in range(1, 4):  # several reads per pooled connection, each after a commit
        changed = pb.CitizenChanges(full_name=f"Nguyễn Văn An {'Bình' * version}")
        updated = stub.UpdateCitizen(
            pb.UpdateCitizenRequest(registry_id=citizen.registry_id, expected_version=version, changes=changed)
        ).citizen
        assert stub.GetCitizen(by_id).citizen == updated
        by_number = pb.GetCitizenRequest(national_id=updated.national_id)
        assert stub.GetCitizen(by_number).citizen == updated
    assert stub.GetCitizen(by_id).citizen.version == 4


def test_read_errors_name_the_field_or_the_missing_citizen(registry: Registry) -> None:
    stub = registry.stub
    missing_id = "0b7c3a52-8f0e-4a8e-9a55-3f4d3b1c2a10"
    missing = error_of(lambda: stub.GetCitizen(pb.GetCitizenRequest(registry_id=missing_id)))
    assert missing.code() == grpc.StatusCode.NOT_FOUND and missing_id in (missing.details() or "")
    number = registry.national_id()
    unknown = error_of(lambda: stub.GetCitizen(pb.GetCitizenRequest(national_id=number)))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND and number not in (unknown.details() or "")
    bad = error_of(lambda: stub.GetCitizen(pb.GetCitizenRequest(national_id="12345")))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations_of(bad)] == ["national_id"]


def test_search_filters_by_birth_date_and_ward(registry: Registry) -> None:
    def register(name: str, born: str, ward: str) -> str:
        address = common_pb2.Address(province_code="079", ward_code=ward, street="1 Lê Lợi")
        year = int(born[:4])
        citizen = registry.citizen_input(
            full_name=name, date_of_birth=born, address=address, national_id=registry.national_id(year)
        )
        return registry.register(citizen).registry_id

    an_1990 = register("Nguyễn Văn An", "1990-03-14", "26734")
    an_1991 = register("Nguyễn Văn An", "1991-03-14", "26734")
    anh_1990_other_ward = register("Nguyễn Văn Anh", "1990-03-14", "26737")
    register("Trần Thị Bình", "1990-03-14", "26734")
    stub = registry.stub

    def found(query: str, date_of_birth: str = "", ward_code: str = "") -> list[str]:
        request = pb.SearchCitizensRequest(query=query, date_of_birth=date_of_birth, ward_code=ward_code)
        return [r.citizen.registry_id for r in stub.SearchCitizens(request).results]

    assert set(found(query="nguyen van an")) == {an_1990, an_1991, anh_1990_other_ward}
    assert found(query="Nguyễn Văn An", date_of_birth="1990-03-14") == [an_1990, anh_1990_other_ward]
    assert sorted(found(query="nguyen an", ward_code="26734")) == sorted([an_1990, an_1991])
    assert found(query="nguyen", date_of_birth="1990-03-14", ward_code="26737") == [anh_1990_other_ward]
    assert found(query="nguyen", date_of_birth="1985-01-01") == []


def test_bad_search_filters_and_foreign_page_tokens_are_refused(registry: Registry) -> None:
    for given in ["An", "Bình", "Châu"]:
        registry.register(registry.citizen_input(full_name=f"Nguyễn Văn {given}"))
    stub = registry.stub
    error = error_of(
        lambda: stub.SearchCitizens(pb.SearchCitizensRequest(query="an", date_of_birth="14/03/1990", ward_code="7"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(f for f, _ in violations_of(error)) == ["date_of_birth", "ward_code"]
    first = stub.SearchCitizens(pb.SearchCitizensRequest(query="nguyen", page_size=2, ward_code="26734"))
    assert first.next_page_token
    other_filter = pb.SearchCitizensRequest(query="nguyen", page_size=2, page_token=first.next_page_token)
    error = error_of(lambda: stub.SearchCitizens(other_filter))
    assert [f for f, _ in violations_of(error)] == ["page_token"]


def test_the_search_migration_indexes_citizens_already_registered(pg_database: str) -> None:
    engine = make_engine(pg_database)
    config = alembic_config("registry", metadata)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "d6b2be295271")
        now = datetime.now(UTC)
        for registry_id, name in [("a" * 36, "Lê Thị Mai-Anh"), ("b" * 36, "Đỗ Quang Huy")]:
            row = {
                "registry_id": registry_id,
                "national_id": registry_id[:12].replace("a", "1").replace("b", "2"),
                "full_name": name,
                "search_key": domain.search_key(name),
                "date_of_birth": now.date(),
                "gender": "female",
                "province_code": "079",
                "ward_code": "26734",
                "street": "1 Lê Lợi",
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            names = ", ".join(row)
            connection.execute(text(f"INSERT INTO citizens ({names}) VALUES (:{', :'.join(row)})"), row)
        command.upgrade(config, SEARCH_MIGRATION)
        prefixes: dict[str, list[str]] = dict(
            connection.execute(text("SELECT full_name, search_prefixes FROM citizens")).all()
        )
        assert "anh" in prefixes["Lê Thị Mai-Anh"] and "mai" in prefixes["Lê Thị Mai-Anh"]
        for name, stored in prefixes.items():  # the SQL backfill and the store's own function agree
            assert stored == search_prefixes(domain.search_key(name))
        assert prefixes["Đỗ Quang Huy"] == ["d", "do", "h", "hu", "huy", "q", "qu", "qua", "quan", "quang"]
        command.downgrade(config, "d6b2be295271")
        columns = {
            c
            for (c,) in connection.execute(
                text("SELECT column_name FROM information_schema.columns WHERE table_name = 'citizens'")
            )
        }
        assert "search_prefixes" not in columns
        assert connection.execute(text("SELECT count(*) FROM citizens")).scalar_one() == 2
    engine.dispose()
