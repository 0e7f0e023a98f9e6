"""asn1crypto sets each ASN.1 class up (name maps, field maps) the first time one is built, and
that first build is not thread-safe: `ValueMap._setup` publishes an empty `_reverse_map` before
filling it, so a second thread building the same class then fails with "value, v1, is not
present in the _map" (seen in CI: two signing replicas, eight concurrent SignDocument calls,
`CMSVersion` inside pyHanko's time-stamp). The service sets every class up once, on one thread,
before it serves."""

from __future__ import annotations

import contextlib
import importlib
import logging
from typing import Any

from asn1crypto import core

log = logging.getLogger(__name__)

# every asn1crypto module the signing code and pyHanko build values from
_MODULES = ("algos", "cms", "crl", "csr", "keys", "ocsp", "pdf", "tsp", "x509")


def set_up_all_classes() -> int:
    """Builds one value of every ASN.1 class loaded (which runs its setup) and fills any name map
    still missing; returns how many classes there were."""
    for name in _MODULES:
        importlib.import_module(f"asn1crypto.{name}")
    count = 0
    for cls in _subclasses(core.Asn1Value):
        with contextlib.suppress(Exception):  # an abstract or argument-taking class: maps set below
            cls()
        names = getattr(cls, "_map", None)
        if names is not None and getattr(cls, "_reverse_map", None) is None:
            reverse = {value: key for key, value in names.items()}
            cls._reverse_map = reverse  # type: ignore[attr-defined]  # built whole, then published
        count += 1
    log.debug("asn1crypto classes set up", extra={"classes": count})
    return count


def _subclasses(root: type[Any]) -> list[type[Any]]:
    found: list[type[Any]] = []
    pending: list[type[Any]] = [root]
    while pending:
        for child in pending.pop().__subclasses__():
            if child not in found:
                found.append(child)
                pending.append(child)
    return found
