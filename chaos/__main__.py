"""python -m chaos [run] [--minutes N]            the fault suite (no --minutes: the CI schedule once)
python -m chaos soak --minutes 60 [--rate R]    steady load at R writes/s (default: half the measured maximum)

Both start a PRIVATE Kafka and PostgreSQL (never the shared 9092/5432), print a report and write
it as JSON (var/chaos-report.json, var/soak-report.json); the exit status is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaos.runner import ChaosOptions, print_report, private_platform, run_chaos, write_report
from chaos.soak import SoakOptions, print_soak_report, run_soak, soak_passed
from kit.config import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", nargs="?", choices=["run", "soak"], default="run")
    parser.add_argument("--minutes", type=float, default=None, help="run: faults until then; soak: duration (60)")
    parser.add_argument("--rate", type=float, default=None, help="soak: writes/s (default: half the measured max)")
    parser.add_argument("--outage-seconds", type=float, default=5.0, help="run: how long Kafka/PostgreSQL stay down")
    parser.add_argument("--report", type=Path, default=None, help="where the JSON report goes")
    parser.add_argument("--keep", action="store_true", help="keep the private infrastructure's data and logs")
    args = parser.parse_args(argv)
    if args.command == "soak":
        soak_options = SoakOptions(minutes=args.minutes or 60.0, rate=args.rate)
        with private_platform(keep=args.keep) as platform:
            report = run_soak(platform, soak_options)
        print_soak_report(report)
        write_report(report, args.report or REPO_ROOT / "var" / "soak-report.json")
        return 0 if soak_passed(report) else 1
    options = ChaosOptions(minutes=args.minutes, outage_seconds=args.outage_seconds)
    with private_platform(keep=args.keep) as platform:
        report = run_chaos(platform, options)
    print_report(report)
    write_report(report, args.report or REPO_ROOT / "var" / "chaos-report.json")
    return 0 if report["verdict"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
