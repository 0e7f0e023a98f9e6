"""Runs the gateway: `python -m services.gateway` (settings and security modes: services.gateway.app)."""

from __future__ import annotations

from services.gateway.app import main

if __name__ == "__main__":
    main()
