"""Unicode in names through the registry API: what is stored, what is found, what is refused.

The domain stores names NFC, zero-width characters (ZWSP, ZWNJ, ZWJ, BOM) stripped, whitespace
collapsed; other invisible or control characters (RTL override, NUL) are refused. The API must
agree with itself: the stored form is what comes back, and search finds it from any spelling."""

from __future__ import annotations

import unicodedata
from typing import Any

import grpc
import pytest
from citydata.v1 import registry_pb2 as pb
from google.protobuf.message import Message

from tests.hostile.conftest import Platform
from tests.integration.registry.conftest import citizen_input

NFC_NAME = "Nguyễn Thị Ánh Tuyết"
NFD_NAME = unicodedata.normalize("NFD", NFC_NAME)


def _stub(platform: Platform) -> tuple[grpc.Channel, str]:
    return platform.channel(platform.registry), "/citydata.v1.RegistryService/"


def _call(platform: Platform, method: str, request: Message, response: type[Message]) -> Any:
    channel, prefix = _stub(platform)
    stub = channel.unary_unary(prefix + method, lambda m: m.SerializeToString(), response.FromString)
    return stub(request, timeout=10)


def register(platform: Platform, full_name: str) -> pb.Citizen:
    request = pb.RegisterCitizenRequest(citizen=citizen_of(full_name))
    return _call(platform, "RegisterCitizen", request, pb.RegisterCitizenResponse).citizen


def citizen_of(full_name: str) -> pb.CitizenInput:
    return citizen_input(full_name=full_name)


def search(platform: Platform, query: str) -> list[str]:
    request = pb.SearchCitizensRequest(query=query, page_size=50)
    response = _call(platform, "SearchCitizens", request, pb.SearchCitizensResponse)
    return [r.citizen.registry_id for r in response.results]  # type: ignore[attr-defined]


def test_nfd_and_nfc_spellings_store_the_same_nfc_name(platform: Platform) -> None:
    assert NFD_NAME != NFC_NAME
    from_nfd = register(platform, NFD_NAME)
    from_nfc = register(platform, NFC_NAME)

    assert from_nfd.full_name == from_nfc.full_name == NFC_NAME
    got = _call(platform, "GetCitizen", pb.GetCitizenRequest(registry_id=from_nfd.registry_id), pb.GetCitizenResponse)
    assert got.citizen.full_name == NFC_NAME  # type: ignore[attr-defined]


def test_search_finds_a_name_from_either_normal_form(platform: Platform) -> None:
    citizen = register(platform, "Trần Quốc Hoàng Vũ")
    nfd_query = unicodedata.normalize("NFD", "Trần Quốc Hoàng Vũ")

    assert citizen.registry_id in search(platform, "Trần Quốc Hoàng Vũ")
    assert citizen.registry_id in search(platform, nfd_query)
    assert citizen.registry_id in search(platform, "Hoàng\u200b Vũ")  # a pasted zero-width space


@pytest.mark.parametrize(
    "decorated",
    [
        "Lê\u200b Văn Tám",  # zero-width space
        "Lê Vă\u200cn Tám",  # zero-width non-joiner
        "Lê Văn\u200d Tám",  # zero-width joiner
        "\ufeffLê Văn Tám",  # byte-order mark
        "Lê  Văn \t Tám ",  # runs of whitespace
    ],
)
def test_zero_width_characters_and_extra_spaces_are_stripped(platform: Platform, decorated: str) -> None:
    assert register(platform, decorated).full_name == "Lê Văn Tám"


@pytest.mark.parametrize(
    "hostile",
    [
        "\u202eLê Văn Tám",  # right-to-left override
        "Lê Văn\u200f Tám",  # right-to-left mark
        "Lê Văn\x00Tám",  # NUL
        "Lê Văn\x1bTám",  # escape
        "Lê Văn Tám \U0001f600",  # emoji: So, not invisible, allowed? see the assertion below
    ],
)
def test_invisible_and_control_characters_are_refused_with_the_field_named(platform: Platform, hostile: str) -> None:
    before = platform.registry.data_counts()
    try:
        citizen = register(platform, hostile)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert "full_name" in (error.details() or "")  # type: ignore[attr-defined]
        assert platform.registry.data_counts() == before
        return
    # Accepted: only visible characters may be stored, and exactly as normalised.
    assert not any(unicodedata.category(ch).startswith("C") for ch in citizen.full_name)
    assert citizen.full_name == unicodedata.normalize("NFC", hostile)
