"""CheckRegistered: which of a batch of citizens and businesses are registered, in one call,
through the real gRPC API and PostgreSQL (the dossier import asks it for a chunk's applicants)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import grpc
import pytest
from citydata.v1 import registry_pb2 as pb

from kit.grpc_errors import violations_of
from tests.integration.registry.test_registry_businesses_import import business_input

if TYPE_CHECKING:
    from conftest import Registry


def test_it_answers_for_both_kinds_in_the_order_asked_each_id_once(registry: Registry) -> None:
    first, second = registry.register(), registry.register()
    business = registry.stub.RegisterBusiness(pb.RegisterBusinessRequest(business=business_input(first.registry_id)))
    ghost = str(uuid.uuid4())
    shouted = second.registry_id.upper()  # not canonical, still the same citizen

    asked = [second.registry_id, ghost, first.registry_id, "not-an-id", "", second.registry_id, shouted]
    answer = registry.stub.CheckRegistered(
        pb.CheckRegisteredRequest(
            citizen_registry_ids=asked,
            business_registry_ids=[ghost, business.business.registry_id, first.registry_id],
        ),
        timeout=10,
    )

    assert list(answer.registered_citizen_ids) == [second.registry_id, first.registry_id, shouted]
    # a citizen's id is not a business's, however registered the citizen is
    assert list(answer.registered_business_ids) == [business.business.registry_id]


def test_an_empty_question_gets_an_empty_answer(registry: Registry) -> None:
    assert registry.stub.CheckRegistered(pb.CheckRegisteredRequest(), timeout=10) == pb.CheckRegisteredResponse()


def test_more_than_a_thousand_ids_of_a_kind_is_refused_naming_the_field(registry: Registry) -> None:
    too_many = [str(uuid.uuid4()) for _ in range(1_001)]
    with pytest.raises(grpc.RpcError) as refused:
        registry.stub.CheckRegistered(
            pb.CheckRegisteredRequest(citizen_registry_ids=too_many[:1_000], business_registry_ids=too_many),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(refused.value) == [("business_registry_ids", "at most 1,000 ids per call, got 1,001")]
