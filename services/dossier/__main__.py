"""Runs the dossier service: `python -m services.dossier` (settings from DOSSIER_* / shared env vars)."""

from services.dossier.app import main

if __name__ == "__main__":
    main()
