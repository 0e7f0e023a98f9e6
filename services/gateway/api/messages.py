"""What the gateway reads out of, and cuts out of, the messages it forwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from services.gateway.domain.audit import SUBJECT_KINDS, Subject

# Fields that name a subject without the usual suffix.
SUBJECT_ALIASES = {"legal_representative_id": "registry_id"}

VisibleFields = Callable[[str], frozenset[str] | None]


def subject_kind(field_name: str) -> str | None:
    """`registry_id`, `applicant_registry_id` -> registry_id; likewise national_id, enterprise_code
    and dossier_id. A plural name (`missing_dossier_ids`, a repeated field) names the same kind."""
    if field_name in SUBJECT_ALIASES:
        return SUBJECT_ALIASES[field_name]
    for kind in SUBJECT_KINDS:
        for name in (kind, kind + "s"):
            if field_name == name or field_name.endswith("_" + name):
                return kind
    return None


def subjects_of(message: Message) -> set[Subject]:
    """Every citizen, business and dossier identifier the message holds, at any depth."""
    found: set[Subject] = set()
    for field, value in _set_fields(message):
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for child in _child_messages(field, value):
                found |= subjects_of(child)
        elif field.type == FieldDescriptor.TYPE_STRING:
            kind = subject_kind(field.name)
            if kind is not None:
                values = list(value) if _is_repeated(field) else [value]
                found.update(Subject.of(kind, item) for item in values if item)
    return found


def withhold_fields(message: Message, visible_fields: VisibleFields) -> None:
    """Clears, at any depth, the fields of personal message types the caller may not see.

    Unknown fields (from a service newer than this gateway) are dropped from personal message
    types too: nobody has classified them yet, so nobody sees them."""
    visible = visible_fields(message.DESCRIPTOR.full_name)
    if visible is not None:
        message.DiscardUnknownFields()
        for field, _value in _set_fields(message):
            if field.name not in visible:
                message.ClearField(field.name)
    for field, value in _set_fields(message):
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for child in _child_messages(field, value):
                withhold_fields(child, visible_fields)


def _set_fields(message: Message) -> list[tuple[FieldDescriptor, Any]]:
    return list(message.ListFields())


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _child_messages(field: FieldDescriptor, value: Any) -> Iterator[Message]:
    entry_type = field.message_type
    assert entry_type is not None  # only called for message fields
    if entry_type.GetOptions().map_entry:
        value_field = entry_type.fields_by_name["value"]
        if value_field.type == FieldDescriptor.TYPE_MESSAGE:
            yield from value.values()
        return
    if _is_repeated(field):
        yield from value
    else:
        yield value
