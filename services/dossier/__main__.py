"""Runs the dossier service: `python -m services.dossier` (settings from DOSSIER_* / shared env vars)."""

from __future__ import annotations

from kit.clock import SystemClock
from services.dossier import store
from services.dossier.app import apology_settings, applicant_directory, build_app
from services.dossier.messages import TOPIC


def main() -> None:
    from kit.runtime import start_runtime

    runtime = start_runtime("dossier", store.metadata, store.tables, [TOPIC])
    app = build_app(runtime, SystemClock(), applicant_directory(), apology=apology_settings())
    app.host.run_until_signal()


if __name__ == "__main__":
    main()
