"""Operator commands of the gateway: `python -m services.gateway.cli.<name> --help` (audit, kpi, rebuild,
devpki)."""
