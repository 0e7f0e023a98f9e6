"""The policy file operators edit: read at start-up, re-read when it changes, no restart needed.

Each call asks `PolicySource.current()`; at most every `check_interval` seconds that stats the
file and, if its mtime or size changed, parses and validates the whole file before swapping it in
(one reference assignment, so a call sees either the old or the new policy, never a mix). A file
that does not parse or validate keeps the previous policy and logs an error once per change.
"""

from __future__ import annotations

import logging
import threading
import time
import tomllib
from pathlib import Path

from google.protobuf import descriptor_pool

from kit.agencies import directory
from services.gateway.api.catalog import load_generated_protos
from services.gateway.domain.policy import UNRESTRICTED_GROUP, Policy, PolicyError, parse_policy

log = logging.getLogger(__name__)


def load_policy(path: Path) -> Policy:
    """Parse and validate the file; PolicyError says what is wrong. Every agency it grants rights
    to must be in the agency directory (kit.agencies), so a misspelt code cannot go unnoticed."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: {exc}") from None
    policy = parse_policy(document, directory().codes())
    _check_field_groups_against_protos(policy)
    return policy


def _check_field_groups_against_protos(policy: Policy) -> None:
    """A misspelt field would be withheld from everybody; a misspelt type would protect nothing."""
    load_generated_protos()  # puts every citydata.v1 message type in the default pool
    pool = descriptor_pool.Default()
    for message_type, groups in policy.field_groups.items():
        try:
            descriptor = pool.FindMessageTypeByName(message_type)
        except KeyError:
            raise PolicyError(f"[field_groups] unknown message type {message_type!r}") from None
        known = set(descriptor.fields_by_name)
        for group, fields in groups.items():
            unknown = fields - known
            if unknown:
                raise PolicyError(f'[field_groups."{message_type}"] {group}: no such field(s) {sorted(unknown)}')
        unclassified = known - {f for fields in groups.values() for f in fields}
        if unclassified:
            log.warning(
                "fields in no group are withheld from every agency",
                extra={
                    "message_type": message_type,
                    "fields": sorted(unclassified),
                    "hint": f"add them to a group or to '{UNRESTRICTED_GROUP}'",
                },
            )


class PolicySource:
    def __init__(self, path: Path, check_interval: float = 1.0) -> None:
        self.path = path
        self.check_interval = check_interval
        self._policy = load_policy(path)  # a broken file at start-up stops the gateway
        self._signature = self._stat()
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()
        log.info("access policy loaded", extra={"path": str(path), "agencies": sorted(self._policy.agencies)})

    def current(self) -> Policy:
        if time.monotonic() - self._checked_at >= self.check_interval and self._lock.acquire(blocking=False):
            try:
                self._reload_if_changed()
            finally:
                self._lock.release()
        return self._policy

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _reload_if_changed(self) -> None:
        self._checked_at = time.monotonic()
        signature = self._stat()
        if signature == self._signature:
            return
        self._signature = signature
        try:
            policy = load_policy(self.path)
        except PolicyError as exc:
            log.error(
                "policy file rejected; the previous policy stays in force",
                extra={"path": str(self.path), "error": str(exc)},
            )
            return
        self._policy = policy
        log.info("access policy reloaded", extra={"path": str(self.path), "agencies": sorted(policy.agencies)})
