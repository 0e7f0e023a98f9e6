"""The quarter simulator: a synthetic quarter of dossiers sent through the platform's real intake."""
