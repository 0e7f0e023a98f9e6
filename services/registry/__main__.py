"""`python -m services.registry`: runs the registry service (settings: see services/registry/app.py)."""

from __future__ import annotations

from services.registry.app import main

if __name__ == "__main__":
    main()
