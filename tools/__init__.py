"""Developer and operator tooling: not imported by the running services (kit is runtime only)."""
