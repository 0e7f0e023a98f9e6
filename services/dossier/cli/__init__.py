"""Operator commands: `python -m services.dossier.cli.<name> --help` (catalogue, catalogue_gen, working_days)."""
