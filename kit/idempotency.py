"""Idempotency keys for mutating RPCs: a retry with the same key returns the first response.

The stored response is written in the same transaction as the effect, so either both exist or
neither. Two concurrent first calls race on the primary key; the loser rolls back and replays.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import Message
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from kit.db import UnitOfWork, sha256_hex
from kit.errors import FailedPrecondition, FieldViolation, InvalidArgument

R = TypeVar("R", bound=Message)
MAX_KEY_LENGTH = 128


def run_idempotent(
    new_uow: Callable[[], UnitOfWork],
    method: str,
    key: str,
    request: Message,
    response_type: type[R],
    action: Callable[[UnitOfWork], R],
) -> R:
    """Run `action` in a unit of work once per (method, key); without a key it simply runs."""
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgument([FieldViolation("idempotency_key", f"at most {MAX_KEY_LENGTH} characters")])
    # only a keyed call is compared with an earlier one (a bulk import's chunk is large to hash)
    fingerprint = sha256_hex(request.SerializeToString(deterministic=True)) if key else ""
    if key:
        replayed = _replay(new_uow, method, key, fingerprint, response_type)
        if replayed is not None:
            return replayed
    try:
        with new_uow() as uow:
            response = action(uow)
            if key:
                uow.session.execute(
                    insert(uow.tables.idempotency_keys).values(
                        method=method,
                        key=key,
                        request_sha256=fingerprint,
                        response=response.SerializeToString(deterministic=True),
                        created_at=datetime.now(UTC),
                    )
                )
            uow.commit()
            return response
    except IntegrityError:
        if not key:
            raise
        replayed = _replay(new_uow, method, key, fingerprint, response_type)
        if replayed is None:
            raise
        return replayed


def _replay(
    new_uow: Callable[[], UnitOfWork], method: str, key: str, fingerprint: str, response_type: type[R]
) -> R | None:
    with new_uow() as uow:
        table = uow.tables.idempotency_keys
        row = uow.session.execute(
            select(table.c.request_sha256, table.c.response).where(table.c.method == method, table.c.key == key)
        ).first()
    if row is None:
        return None
    if row.request_sha256 != fingerprint:
        raise FailedPrecondition(
            f"idempotency key {key!r} was already used for a different {method} request",
            reason="IDEMPOTENCY_KEY_REUSED",
        )
    response = response_type()
    response.ParseFromString(row.response)
    return response
