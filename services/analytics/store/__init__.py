"""The analytics database: tables (`tables.py`, whose `metadata` feeds kit.migrations), the portal
sync's repository (`portal_repository.py`) and its migrations (`migrations/`)."""

from services.analytics.store.tables import PENDING, REFUSED, SENT, metadata, pushes, sync_state, tables

__all__ = ["PENDING", "REFUSED", "SENT", "metadata", "pushes", "sync_state", "tables"]
