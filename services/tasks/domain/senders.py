"""Who confirms a petition's sender: the registry (citizens by CCCD, businesses by tax code)."""

from __future__ import annotations

from typing import Protocol


class SenderRegistry(Protocol):
    def citizen_registry_id(self, national_id: str) -> str | None:
        """The citizen's registry id, or None when the registry does not know the national id."""
        ...

    def business_registry_id(self, tax_code: str) -> str | None:
        """The business's registry id, or None when the registry does not know the tax code."""
        ...


class UncheckedSenders:
    """No registry configured (a development instance): senders are taken as given, unlinked."""

    def citizen_registry_id(self, national_id: str) -> str | None:
        return ""

    def business_registry_id(self, tax_code: str) -> str | None:
        return ""
