"""Tables, repositories and migrations of the dossier service (`metadata` feeds kit.migrations)."""

from services.dossier.store.tables import metadata, tables

__all__ = ["metadata", "tables"]
