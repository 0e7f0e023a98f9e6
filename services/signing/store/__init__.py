"""Tables, repositories and migrations of the signing service (`metadata` feeds kit.migrations):
`tables` (the platform tables, the PKI's state, the certificate index, the audit log),
`certificate_index`, `audit`."""

from services.signing.store.tables import metadata, tables

__all__ = ["metadata", "tables"]
