"""Operator commands of the registry: `python -m services.registry.cli.import_citizens` (a CSV of
citizens into ImportCitizens, with a progress bar)."""
