"""Tables, repositories and migrations of the registry (`metadata` feeds kit.migrations):
`tables` (and their index design), `rows` (row <-> domain), `search` (name-search conditions),
`citizens` and `businesses` (repositories), `citizen_reads` (GetCitizen's hot reads)."""

from services.registry.store.tables import metadata, tables

__all__ = ["metadata", "tables"]
