"""Tables, repositories and migrations of the tasks service (`metadata` feeds kit.migrations)."""

from services.tasks.store.tables import metadata, tables

__all__ = ["metadata", "tables"]
