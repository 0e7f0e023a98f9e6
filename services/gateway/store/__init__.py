"""The gateway's database: tables (`tables.py`, whose `metadata` feeds kit.migrations), the audit
log's repository (`audit_repository.py`) and its migrations (`migrations/`)."""

from services.gateway.store.tables import audit_chain_head, audit_log, audit_subjects, metadata, readmodel, tables

__all__ = ["audit_chain_head", "audit_log", "audit_subjects", "metadata", "readmodel", "tables"]
