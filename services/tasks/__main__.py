"""Runs the tasks service: `python -m services.tasks` (settings from TASKS_* / shared env vars)."""

from __future__ import annotations

from kit.clock import SystemClock
from services.tasks.app import TOPIC, build_app, sender_registry
from services.tasks.store import metadata, tables


def main() -> None:
    from kit.runtime import start_runtime

    runtime = start_runtime("tasks", metadata, tables, [TOPIC])
    build_app(runtime, SystemClock(), sender_registry()).host.run_until_signal()


if __name__ == "__main__":
    main()
