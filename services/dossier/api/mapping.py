"""Domain values ↔ citydata.v1 protobuf messages (the RPCs' requests and answers)."""

from __future__ import annotations

from typing import Any

from citydata.v1 import dossier_pb2 as pb

from kit.proto_time import optional_timestamp, timestamp
from services.dossier.domain.lifecycle import ApplicantKind, Channel, Dossier, State, Transition
from services.dossier.domain.procedures import AuthorityLevel, Procedure, TimeUnit
from services.dossier.store.events import (
    CHANNEL_NUMBERS,
    KIND_NUMBERS,
    STATE_NUMBERS,
    applicant_kind_pb,
    channel_pb,
    state_pb,
)
from services.dossier.store.letters import StoredLetter


def state_of(value: int) -> State | None:
    if value in _STATES_BY_NUMBER:  # a dict look-up: bulk imports read every row's
        return _STATES_BY_NUMBER[value]
    name = pb.DossierState.Name(value).removeprefix("DOSSIER_STATE_")
    return State(name) if name != "UNSPECIFIED" else None


def channel_of(value: int) -> Channel | None:
    if value in _CHANNELS_BY_NUMBER:
        return _CHANNELS_BY_NUMBER[value]
    name = pb.DossierChannel.Name(value).removeprefix("DOSSIER_CHANNEL_")
    return Channel(name) if name != "UNSPECIFIED" else None


def applicant_kind_of(value: int) -> ApplicantKind | None:
    if value in _KINDS_BY_NUMBER:
        return _KINDS_BY_NUMBER[value]
    name = pb.DossierApplicantKind.Name(value).removeprefix("DOSSIER_APPLICANT_KIND_")
    return ApplicantKind(name) if name != "UNSPECIFIED" else None


_STATES_BY_NUMBER: dict[int, State | None] = {0: None, **{n: s for s, n in STATE_NUMBERS.items()}}
_CHANNELS_BY_NUMBER: dict[int, Channel | None] = {0: None, **{n: c for c, n in CHANNEL_NUMBERS.items()}}
_KINDS_BY_NUMBER: dict[int, ApplicantKind | None] = {0: None, **{n: k for k, n in KIND_NUMBERS.items()}}


def enum_number(enum_type: Any, prefix: str, value: int) -> bool:
    """Whether `value` is a defined, non-zero number of the enum (unknown numbers are bad input)."""
    return value != 0 and value in enum_type.values() and enum_type.Name(value).startswith(prefix)


def dossier_pb(dossier: Dossier) -> pb.Dossier:
    return pb.Dossier(
        dossier_id=dossier.dossier_id,
        number=dossier.number,
        procedure_code=dossier.procedure_code,
        agency_code=dossier.agency_code,
        applicant_registry_id=dossier.applicant_registry_id,
        applicant_kind=applicant_kind_pb(dossier.applicant_kind),  # type: ignore[arg-type]
        channel=channel_pb(dossier.channel),  # type: ignore[arg-type]
        state=state_pb(dossier.state),  # type: ignore[arg-type]
        received_at=timestamp(dossier.received_at),
        clock_started_at=optional_timestamp(dossier.clock_started_at),
        due_at=optional_timestamp(dossier.due_at),
        resolved_at=optional_timestamp(dossier.resolved_at),
        on_time=bool(dossier.on_time),
        working_days_used=dossier.working_days_used or 0,
        missed_deadlines=dossier.missed_deadlines,
        reason=dossier.reason,
        payment_reference=dossier.payment_reference,
        paid_amount_vnd=dossier.paid_amount_vnd,
        update_time=timestamp(dossier.updated_at),
    )


def transition_pb(transition: Transition) -> pb.DossierTransition:
    return pb.DossierTransition(
        action=transition.action.value,
        from_state=state_pb(transition.from_state),  # type: ignore[arg-type]
        to_state=state_pb(transition.to_state),  # type: ignore[arg-type]
        occurred_at=timestamp(transition.at),
        note=transition.note,
    )


def procedure_pb(procedure: Procedure) -> pb.Procedure:
    levels = {
        AuthorityLevel.CITY: pb.PROCEDURE_AUTHORITY_LEVEL_CITY,
        AuthorityLevel.DISTRICT: pb.PROCEDURE_AUTHORITY_LEVEL_DISTRICT,
        AuthorityLevel.COMMUNE: pb.PROCEDURE_AUTHORITY_LEVEL_COMMUNE,
    }
    return pb.Procedure(
        code=procedure.code,
        name=procedure.name,
        field=procedure.field,
        authority_level=levels[procedure.authority_level],
        agency_code=procedure.agency_code,
        processing_time=procedure.processing_time,
        time_unit=time_unit_pb(procedure.time_unit),  # type: ignore[arg-type]
        online_level=procedure.online_level,
        fee_vnd=procedure.fee_vnd,
        abolished_from=procedure.abolished_from.isoformat() if procedure.abolished_from else "",
    )


def apology_letter_pb(letter: StoredLetter, dossier_number: str) -> pb.ApologyLetter:
    return pb.ApologyLetter(
        letter_id=letter.letter_id,
        dossier_id=letter.dossier_id,
        pdf=letter.pdf,
        issued_at=timestamp(letter.issued_at),
        new_appointment_at=timestamp(letter.new_appointment_at),
        reason=letter.reason,
        signature_status=pb.APOLOGY_LETTER_SIGNATURE_STATUS_SIGNED,
        sha256=letter.sha256,
        signer_serial=letter.signer_serial,
        signed_at=timestamp(letter.signed_at),
        dossier_number=dossier_number,
        letter_number=letter.letter_number or "",
    )


def time_unit_pb(unit: TimeUnit) -> int:
    return int(pb.ProcedureTimeUnit.Value(f"PROCEDURE_TIME_UNIT_{unit.value}"))
