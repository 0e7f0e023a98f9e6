"""Checks every request gets (kit.request_checks): pure, on real citydata.v1 messages."""

from __future__ import annotations

from citydata.v1 import dossier_pb2, registry_pb2
from google.protobuf import timestamp_pb2

from kit.request_checks import request_violations


def _fields(message: object) -> list[str]:
    return [v.field for v in request_violations(message)]  # type: ignore[arg-type]


def test_nul_in_nested_and_repeated_strings_is_named_by_path() -> None:
    request = registry_pb2.RegisterCitizenRequest(
        citizen=registry_pb2.CitizenInput(full_name="An\x00", address={"street": "1 Lê Lợi\x00"})
    )
    assert _fields(request) == ["citizen.full_name", "citizen.address.street"]


def test_unknown_enum_number_is_refused_and_known_ones_pass() -> None:
    assert _fields(dossier_pb2.SubmitDossierRequest(channel=-2147483648)) == ["channel"]
    assert (
        _fields(
            dossier_pb2.SubmitDossierRequest(
                channel=dossier_pb2.DossierChannel.Value(dossier_pb2.DossierChannel.Name(1))
            )
        )
        == []
    )


def test_timestamps_out_of_range_are_refused() -> None:
    bad_nanos = dossier_pb2.ListDossiersRequest(received_to=timestamp_pb2.Timestamp(seconds=0, nanos=-1))
    too_late = dossier_pb2.ListDossiersRequest(received_from=timestamp_pb2.Timestamp(seconds=10**12))
    fine = dossier_pb2.ListDossiersRequest(received_from=timestamp_pb2.Timestamp(seconds=1_700_000_000))
    assert _fields(bad_nanos) == ["received_to"]
    assert _fields(too_late) == ["received_from"]
    assert _fields(fine) == []


def test_a_clean_request_has_no_violations() -> None:
    request = registry_pb2.SearchCitizensRequest(query="nguyễn văn an", page_size=10)
    assert request_violations(request) == []
