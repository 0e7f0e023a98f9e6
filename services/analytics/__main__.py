"""Runs the analytics service, the National Public Service Portal sync: `python -m services.analytics`
(settings: services.analytics.app; reconcile and requeue: `python -m services.analytics.cli.portal`)."""

from __future__ import annotations

import sys

from services.analytics.app import run

if __name__ == "__main__":
    sys.exit(run())
