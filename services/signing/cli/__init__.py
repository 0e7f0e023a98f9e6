"""Operator commands of the signing service: `python -m services.signing.cli.bootstrap` (create the
PKI) and `python -m services.signing.cli.audit verify` (check the audit log's hash chain)."""
