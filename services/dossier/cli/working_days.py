"""Ask the working-day calendar from a shell.

    python -m services.dossier.cli.working_days due --received 2025-01-24T16:00+07:00 --days 3
    python -m services.dossier.cli.working_days due --received 2025-01-24T16:00+07:00 --hours 8
    python -m services.dossier.cli.working_days between 2025-01-20 2025-02-10
    python -m services.dossier.cli.working_days day 2026-01-02

Every subcommand takes --data-dir (announced-days directory) and --office-hours HH:MM-HH:MM.
Errors print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from kit.deadlines.calendar import LOCAL_TIME, OfficeHours, WorkingCalendar
from kit.deadlines.loader import CalendarDataError, load_calendar
from kit.errors import DomainError

_USAGE_ERROR = 2


class _UsageError(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        calendar = load_calendar(args.data_dir, OfficeHours.parse(args.office_hours))
        for line in args.handler(calendar, args):
            print(line)
    except (DomainError, CalendarDataError, _UsageError) as error:
        message = error.message if isinstance(error, DomainError) else str(error)
        print(f"error: {message}", file=sys.stderr)
        return _USAGE_ERROR
    return 0


def _due(calendar: WorkingCalendar, args: argparse.Namespace) -> list[str]:
    received = _instant(args.received)
    if args.hours is not None:
        due = calendar.due_date_hours(received, args.hours)
    else:
        due = calendar.due_date(received, args.days)
    lines = [
        f"due (local): {due.astimezone(LOCAL_TIME):%Y-%m-%d %H:%M %A} (Asia/Ho_Chi_Minh)",
        f"due (UTC):   {due.isoformat()}",
    ]
    unannounced = sorted({received.year, due.astimezone(LOCAL_TIME).year} - calendar.announced_years)
    if unannounced:
        lines.append(f"note: no announced days off / make-up days for {unannounced}; statutory rules only")
    return lines


def _between(calendar: WorkingCalendar, args: argparse.Namespace) -> list[str]:
    return [str(calendar.working_days_between(_day(args.start), _day(args.end)))]


def _describe_day(calendar: WorkingCalendar, args: argparse.Namespace) -> list[str]:
    info = calendar.day_info(_day(args.day))
    kind = "working day" if info.is_working else "day off"
    return [f"{info.day:%Y-%m-%d %A}: {kind} ({info.reason})"]


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise _UsageError(f"--received: {text!r} is not an ISO 8601 date-time") from None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _UsageError(f"{text!r} is not a YYYY-MM-DD date") from None


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None, help="directory of <year>.json announcements")
    common.add_argument("--office-hours", default="07:30-17:00", help="local office hours, HH:MM-HH:MM")
    parser = argparse.ArgumentParser(
        prog="python -m services.dossier.cli.working_days",
        description="Vietnamese working-day calendar for dossier deadlines.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    due = commands.add_parser("due", parents=[common], help="due instant of a dossier")
    due.add_argument("--received", required=True, help="receipt instant with offset")
    amount = due.add_mutually_exclusive_group(required=True)
    amount.add_argument("--days", type=int, help="processing time in working days")
    amount.add_argument("--hours", type=int, help="processing time in working hours")
    due.set_defaults(handler=_due)

    between = commands.add_parser("between", parents=[common], help="working days after START up to and including END")
    between.add_argument("start")
    between.add_argument("end")
    between.set_defaults(handler=_between)

    day = commands.add_parser("day", parents=[common], help="is DAY a working day, and why")
    day.add_argument("day")
    day.set_defaults(handler=_describe_day)
    return parser


if __name__ == "__main__":
    sys.exit(main())
