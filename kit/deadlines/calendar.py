"""The Vietnamese working-day calendar: the one deadline engine of the platform.

Dossiers, tasks, petitions and analytics count their deadlines here, in working days
(administrative procedures, assigned tasks) or in calendar days (complaints and denunciations).

Pure: the statutory holidays come from an injected `StatutoryRules` (the loader adapts the
`holidays` library) and the government's yearly announcements come in as parsed
`AnnouncedYear` values, so nothing here reads files or the clock.

Rules, for public offices in Ho Chi Minh City (Asia/Ho_Chi_Minh, UTC+7):

* A day is a working day when it is Monday to Friday and not a public holiday of Labour
  Code 2019 art. 112 (nor the compensatory day of one that falls on a weekend), nor an
  extra day off the government announces; announced make-up days (usually Saturdays) are
  working days.
* Precedence for one date: announced working day > announced day off > statutory make-up
  day > weekend > statutory holiday > working.
* Deadlines in working days (Civil Code 2015 art. 147, the first day is not counted): the
  effective receipt day D is the receipt date when that is a working day and the dossier
  arrived before closing time, else the next working day. A dossier due in N working days
  is due at closing time of the N-th working day after D.
* Deadlines in working hours count only time inside office hours on working days.
* Deadlines in calendar days (Civil Code 2015 art. 147-148; the Laws on Complaints and on
  Denunciations count so): the first day is not counted; the period ends at 24:00 local time of
  its last day; when that last day is a weekend day or a holiday, it ends at 24:00 of the next
  working day (art. 148.5). Weekends and holidays inside the period count like any other day.

Instants go in and come out timezone-aware; results are in UTC.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, ViolationCollector

LOCAL_TIME = ZoneInfo("Asia/Ho_Chi_Minh")
# Ho Chi Minh City has kept UTC+7 since June 1975. From 1976 on, a UTC instant's local wall time is
# the instant plus seven hours: an addition instead of a zone look-up (bulk imports convert
# millions). Checked against the zone data at start-up, every January and July to 2100; where the
# data disagree (a future change of zone), every instant goes through the zone.
_FIXED_OFFSET = timedelta(hours=7)
_FIXED_OFFSET_FROM = datetime(1976, 1, 1, tzinfo=UTC)
_FIXED_OFFSET_UNTIL = datetime(2100, 1, 1, tzinfo=UTC)
_FIXED_OFFSET_HOLDS = all(
    LOCAL_TIME.utcoffset(datetime(year, month, 1)) == _FIXED_OFFSET for year in range(1976, 2101) for month in (1, 7)
)

# Guards against runaway loops from a typo (e.g. 10**9 days); real procedures last weeks.
MAX_WORKING_DAYS = 1000
MAX_WORKING_HOURS = 8000
MAX_CALENDAR_DAYS = 3660
# Tết plus its weekends and swaps never exceeds ~10 days; a longer gap means bad data.
_MAX_DAYS_TO_NEXT_WORKING_DAY = 31


@dataclass(frozen=True)
class OfficeHours:
    """When public offices receive and process dossiers, in local time. No lunch break."""

    opens: time = time(7, 30)
    closes: time = time(17, 0)

    def __post_init__(self) -> None:
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise InvalidArgument([_violation("office_hours", "times must be local, without tzinfo")])
        if self.opens >= self.closes:
            raise InvalidArgument([_violation("office_hours", "opening must be before closing")])

    @classmethod
    def parse(cls, text: str) -> OfficeHours:
        """Read `HH:MM-HH:MM`, e.g. `07:30-17:00`."""
        opens_text, separator, closes_text = text.partition("-")
        try:
            if not separator:
                raise ValueError(text)
            return cls(time.fromisoformat(opens_text.strip()), time.fromisoformat(closes_text.strip()))
        except ValueError:
            raise InvalidArgument([_violation("office_hours", f"expected HH:MM-HH:MM, got {text!r}")]) from None


@dataclass(frozen=True)
class StatutoryYear:
    """What the law alone makes of one year: holidays with their compensatory days, and any
    weekend days the rules source already knows to be make-up working days."""

    year: int
    holidays: Mapping[date, str]
    make_up_days: Mapping[date, str] = field(default_factory=dict)


class StatutoryRules(Protocol):
    """Computes statutory holidays (lunar dates included) for any year."""

    def for_year(self, year: int) -> StatutoryYear: ...


@dataclass(frozen=True)
class AnnouncedYear:
    """The government's announcements for one year, as operators keep them in data files.

    `days_off` adds non-working days (swapped weekdays, the announced Tết days, ...);
    `working_days` adds working days (make-up Saturdays, or a statutory day declared
    worked). When `statutory_holidays` is given it replaces the computed statutory set of
    `year` entirely (its make-up days included).
    """

    year: int
    days_off: Mapping[date, str] = field(default_factory=dict)
    working_days: Mapping[date, str] = field(default_factory=dict)
    statutory_holidays: Mapping[date, str] | None = None
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DayInfo:
    """Whether a date is worked, and the reason a person would be given."""

    day: date
    is_working: bool
    reason: str


class WorkingCalendar:
    """Answers working-day questions and computes dossier due dates."""

    def __init__(
        self,
        statutory_rules: StatutoryRules,
        announcements: Iterable[AnnouncedYear] = (),
        office_hours: OfficeHours | None = None,
    ) -> None:
        self.office_hours = office_hours or OfficeHours()
        self._rules = statutory_rules
        self._announced = {year.year: year for year in announcements}
        self._days_off, self._working_days = _merge_announcements(self._announced.values())
        self._statutory_cache: dict[int, StatutoryYear] = {}
        # The calendar never changes once built; bulk imports ask about the same days millions of times.
        self._working_cache: dict[date, bool] = {}
        self._due_cache: dict[tuple[date, int], datetime] = {}
        self._index = _WorkingDayIndex(self.is_working_day)

    def prepare(self, around: date) -> None:
        """Reads the rules and indexes the working days of the years around `around` now (a
        service at start-up), so that its first deadline question does not pay for them."""
        self._index.between(around, around)

    @property
    def announced_years(self) -> frozenset[int]:
        """Years with announced data; other years follow the statutory rules only."""
        return frozenset(self._announced)

    def announcement(self, year: int) -> AnnouncedYear | None:
        return self._announced.get(year)

    # --- days -------------------------------------------------------------------------

    def day_info(self, day: date) -> DayInfo:
        if day in self._working_days:
            return DayInfo(day, True, self._working_days[day])
        if day in self._days_off:
            return DayInfo(day, False, self._days_off[day])
        statutory = self._statutory(day.year)
        if day in statutory.make_up_days:
            return DayInfo(day, True, statutory.make_up_days[day])
        if day.weekday() >= 5:
            return DayInfo(day, False, "weekend")
        if day in statutory.holidays:
            return DayInfo(day, False, statutory.holidays[day])
        return DayInfo(day, True, "working day")

    def is_working_day(self, day: date) -> bool:
        working = self._working_cache.get(day)
        if working is None:
            working = self._working_cache[day] = self.day_info(day).is_working
        return working

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        found = self._index.add(day, 1)
        return found if found is not None else self._next_working_day_stepwise(day)

    def _next_working_day_stepwise(self, day: date) -> date:
        """Day by day: the definition the index is checked against, and what answers (or raises
        CALENDAR_DATA_INVALID) where the index cannot."""
        candidate = day
        for _ in range(_MAX_DAYS_TO_NEXT_WORKING_DAY):
            candidate += timedelta(days=1)
            if self.is_working_day(candidate):
                return candidate
        raise FailedPrecondition(
            f"no working day within {_MAX_DAYS_TO_NEXT_WORKING_DAY} days after {day}: check the calendar data",
            reason="CALENDAR_DATA_INVALID",
        )

    def add_working_days(self, day: date, working_days: int) -> date:
        """The `working_days`-th working day after `day` (`day` itself is not counted)."""
        if not _is_count(working_days, MAX_WORKING_DAYS):
            _check_count("working_days", working_days, MAX_WORKING_DAYS)
        if working_days == 0:
            return day
        found = self._index.add(day, working_days)
        return found if found is not None else self._add_working_days_stepwise(day, working_days)

    def _add_working_days_stepwise(self, day: date, working_days: int) -> date:
        result = day
        for _ in range(working_days):
            result = self._next_working_day_stepwise(result)
        return result

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie after `start`, up to and including `end`.

        So `working_days_between(D, due.date()) == N` for a due date N working days after
        D. It is antisymmetric: when `end` is before `start` the result is the negated
        count from `end` to `start` (e.g. -2 means the deadline is two working days away).
        """
        if end < start:
            return -self.working_days_between(end, start)
        counted = self._index.between(start, end)
        return counted if counted is not None else self._working_days_between_stepwise(start, end)

    def _working_days_between_stepwise(self, start: date, end: date) -> int:
        return sum(1 for day in _days_after(start, end) if self.is_working_day(day))

    # --- instants ---------------------------------------------------------------------

    def effective_receipt_day(self, received_at: datetime) -> date:
        """D: the receipt date if it is a working day and before closing, else the next
        working day. Arrivals before opening on a working day count for that day."""
        if received_at.tzinfo is None or received_at.utcoffset() is None:
            _check_instant("received_at", received_at)
        local = local_wall_time(received_at)
        if self.is_working_day(local.date()) and local.time() < self.office_hours.closes:
            return local.date()
        return self.next_working_day(local.date())

    def due_date(self, received_at: datetime, working_days: int) -> datetime:
        """Closing time of the N-th working day after the effective receipt day, in UTC."""
        if not (_is_aware(received_at) and _is_count(working_days, MAX_WORKING_DAYS)):
            _check_instant_and_count("received_at", received_at, "working_days", working_days, MAX_WORKING_DAYS)
        receipt_day = self.effective_receipt_day(received_at)
        key = (receipt_day, working_days)
        due = self._due_cache.get(key)
        if due is None:
            due = self._due_cache[key] = self._closing_instant(self.add_working_days(receipt_day, working_days))
        return due

    def due_date_hours(self, received_at: datetime, working_hours: int) -> datetime:
        """Receipt plus N working hours, counted only inside office hours on working days.

        A receipt outside office hours starts counting at the next opening.
        """
        _check_instant_and_count("received_at", received_at, "working_hours", working_hours, MAX_WORKING_HOURS)
        cursor = self._next_counting_instant(received_at.astimezone(LOCAL_TIME))
        remaining = timedelta(hours=working_hours)
        while True:
            left_today = self._local_instant(cursor.date(), self.office_hours.closes) - cursor
            if remaining <= left_today:
                return (cursor + remaining).astimezone(UTC)
            remaining -= left_today
            cursor = self._local_instant(self.next_working_day(cursor.date()), self.office_hours.opens)

    def new_appointment(self, from_instant: datetime, working_days: int) -> datetime:
        """The new appointment of an apology letter: closing time of the N-th working day
        after the local date of `from_instant` (typically the missed due date).

        Unlike `due_date`, the time of day does not shift the start: the anchor is a
        deadline or a letter's date, not a receipt, and a due date is itself at closing.
        """
        _check_instant_and_count("from_instant", from_instant, "working_days", working_days, MAX_WORKING_DAYS)
        anchor = from_instant.astimezone(LOCAL_TIME).date()
        return self._closing_instant(self.add_working_days(anchor, working_days))

    # --- calendar days ----------------------------------------------------------------

    def calendar_deadline_day(self, start: date, calendar_days: int) -> date:
        """The last day of a period of N calendar days after `start` (`start` itself is not
        counted); a last day that is not a working day moves to the next working day."""
        _check_count("calendar_days", calendar_days, MAX_CALENDAR_DAYS)
        last = start + timedelta(days=calendar_days)
        return last if self.is_working_day(last) else self.next_working_day(last)

    def due_date_calendar_days(self, started_at: datetime, calendar_days: int) -> datetime:
        """24:00 local time of the last day of N calendar days counted from the local date of
        `started_at` (e.g. a complaint's acceptance), in UTC."""
        _check_instant_and_count("started_at", started_at, "calendar_days", calendar_days, MAX_CALENDAR_DAYS)
        start = started_at.astimezone(LOCAL_TIME).date()
        return self.end_of_day(self.calendar_deadline_day(start, calendar_days))

    @staticmethod
    def end_of_day(day: date) -> datetime:
        """24:00 local time of `day` (Civil Code 2015 art. 148.6), i.e. the next midnight, in UTC."""
        return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=LOCAL_TIME).astimezone(UTC)

    @staticmethod
    def calendar_days_between(start: date, end: date) -> int:
        """Calendar days after `start` up to and including `end` (negative when `end` is earlier)."""
        return (end - start).days

    # --- helpers ----------------------------------------------------------------------

    def _statutory(self, year: int) -> StatutoryYear:
        cached = self._statutory_cache.get(year)
        if cached is None:
            cached = self._compute_statutory(year)
            self._statutory_cache[year] = cached
        return cached

    def _compute_statutory(self, year: int) -> StatutoryYear:
        announced = self._announced.get(year)
        if announced is not None and announced.statutory_holidays is not None:
            return StatutoryYear(year, announced.statutory_holidays)
        return self._rules.for_year(year)

    def _next_counting_instant(self, local: datetime) -> datetime:
        day = local.date()
        if self.is_working_day(day) and local.time() < self.office_hours.closes:
            return max(local, self._local_instant(day, self.office_hours.opens))
        return self._local_instant(self.next_working_day(day), self.office_hours.opens)

    def _closing_instant(self, day: date) -> datetime:
        return self._local_instant(day, self.office_hours.closes).astimezone(UTC)

    @staticmethod
    def _local_instant(day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=LOCAL_TIME)


def _merge_announcements(
    years: Iterable[AnnouncedYear],
) -> tuple[dict[date, str], dict[date, str]]:
    """Flatten every year's announcements by date; a date may not be both off and worked."""
    days_off: dict[date, str] = {}
    working_days: dict[date, str] = {}
    for year in years:
        days_off.update(year.days_off)
        working_days.update(year.working_days)
    collector = ViolationCollector()
    for day in sorted(days_off.keys() & working_days.keys()):
        collector.add("announcements", f"{day} is announced both as a day off and as a working day")
    collector.raise_if_any()
    return days_off, working_days


class _WorkingDayIndex:
    """Working-day arithmetic as array look-ups over whole years, built lazily from the
    calendar's own `is_working_day`: `counts[i]` is how many working days lie in
    [first day, first day + i], `ordinals` lists the working days in order. So "the N-th working
    day after D" is `ordinals[counts[D] + N - 1]` and "working days after S up to E" is
    `counts[E] - counts[S]`: a bulk import asks these for every dossier.

    Answers None where the day-by-day definition must answer instead: outside years 1-9999, or
    on a path crossing a gap of more than `_MAX_DAYS_TO_NEXT_WORKING_DAY` days (bad calendar data,
    which the day-by-day walk reports). Extending replaces the whole snapshot at once, so threads
    sharing the calendar read a consistent one without a lock."""

    # The years built around the first question (a dossier's deadlines reach past the year's end).
    _MARGIN_YEARS = 1

    def __init__(self, is_working_day: Callable[[date], bool]) -> None:
        self._is_working_day = is_working_day
        self._snapshot: _IndexSnapshot | None = None

    def add(self, day: date, working_days: int) -> date | None:
        """The `working_days`-th working day strictly after `day` (`working_days` >= 1)."""
        snapshot = self._covering(day.year, day.year + 1 + working_days // 200)
        if snapshot is None:
            return None
        position = snapshot.counts[day.toordinal() - snapshot.first] + working_days - 1
        while position >= len(snapshot.ordinals):
            if snapshot.last_year >= MAXYEAR:
                return None
            snapshot = self._covering(snapshot.first_year, snapshot.last_year + 1)
            if snapshot is None:
                return None
        if not snapshot.path_is_sound(day.toordinal(), position, working_days):
            return None
        return date.fromordinal(snapshot.ordinals[position])

    def between(self, start: date, end: date) -> int | None:
        """Working days after `start` up to and including `end` (`start` <= `end`)."""
        snapshot = self._covering(start.year, end.year)
        if snapshot is None:
            return None
        return snapshot.counts[end.toordinal() - snapshot.first] - snapshot.counts[start.toordinal() - snapshot.first]

    def _covering(self, first_year: int, last_year: int) -> _IndexSnapshot | None:
        snapshot = self._snapshot
        if snapshot is not None and snapshot.first_year <= first_year and last_year <= snapshot.last_year:
            return snapshot
        if snapshot is not None:
            first_year, last_year = min(first_year, snapshot.first_year), max(last_year, snapshot.last_year)
        else:
            first_year, last_year = first_year - self._MARGIN_YEARS, last_year + self._MARGIN_YEARS
        first_year, last_year = max(first_year, MINYEAR), min(last_year, MAXYEAR)
        if first_year > last_year:
            return None
        snapshot = _IndexSnapshot.build(first_year, last_year, self._is_working_day)
        self._snapshot = snapshot
        return snapshot


@dataclass(frozen=True)
class _IndexSnapshot:
    first_year: int
    last_year: int
    first: int  # ordinal of 1 January of first_year
    counts: list[int]
    ordinals: list[int]
    long_gaps: list[int]  # positions p in `ordinals` whose gap from the previous working day is too long

    @classmethod
    def build(cls, first_year: int, last_year: int, is_working_day: Callable[[date], bool]) -> _IndexSnapshot:
        first = date(first_year, 1, 1).toordinal()
        last = date(last_year, 12, 31).toordinal()
        counts: list[int] = []
        ordinals: list[int] = []
        for ordinal in range(first, last + 1):
            if is_working_day(date.fromordinal(ordinal)):
                ordinals.append(ordinal)
            counts.append(len(ordinals))
        long_gaps = [
            p for p in range(1, len(ordinals)) if ordinals[p] - ordinals[p - 1] > _MAX_DAYS_TO_NEXT_WORKING_DAY
        ]
        return cls(first_year, last_year, first, counts, ordinals, long_gaps)

    def path_is_sound(self, start: int, position: int, working_days: int) -> bool:
        """Whether walking day by day from `start` to `ordinals[position]` meets no gap longer
        than the walk allows (the walk would raise there)."""
        first_position = position - working_days + 1
        if self.ordinals[first_position] - start > _MAX_DAYS_TO_NEXT_WORKING_DAY:
            return False
        # a long gap between two working days of the path?
        return not self.long_gaps or bisect_right(self.long_gaps, position) == bisect_right(
            self.long_gaps, first_position
        )


def _is_aware(instant: datetime) -> bool:
    return instant.tzinfo is not None and instant.utcoffset() is not None


def _is_count(value: object, maximum: int) -> bool:
    """The valid counts, checked without building a collector (bulk imports check millions)."""
    return type(value) is int and 0 <= value <= maximum


def _days_after(start: date, end: date) -> Iterator[date]:
    day = start + timedelta(days=1)
    while day <= end:
        yield day
        day += timedelta(days=1)


def local_wall_time(instant: datetime) -> datetime:
    """An aware instant's wall-clock time in Ho Chi Minh City: read only its `date()` and `time()`
    (for a UTC instant it may still carry the UTC tzinfo, shifted by the local offset)."""
    if instant.tzinfo is UTC and _FIXED_OFFSET_HOLDS and _FIXED_OFFSET_FROM <= instant < _FIXED_OFFSET_UNTIL:
        return instant + _FIXED_OFFSET
    return instant.astimezone(LOCAL_TIME)


def local_date(instant: datetime) -> date:
    """The date in Ho Chi Minh City at an aware instant."""
    return local_wall_time(instant).date()


def _violation_collector_for(instant_field: str, instant: datetime) -> ViolationCollector:
    collector = ViolationCollector()
    if instant.tzinfo is None or instant.utcoffset() is None:
        collector.add(instant_field, "must be timezone-aware (include a UTC offset, e.g. +07:00)")
    return collector


def _add_count_violation(collector: ViolationCollector, name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        collector.add(name, "must be a whole number")
    elif value < 0:
        collector.add(name, "must not be negative")
    elif value > maximum:
        collector.add(name, f"must be at most {maximum}")


def _check_instant(name: str, instant: datetime) -> None:
    _violation_collector_for(name, instant).raise_if_any()


def _check_count(name: str, value: int, maximum: int) -> None:
    collector = ViolationCollector()
    _add_count_violation(collector, name, value, maximum)
    collector.raise_if_any()


def _check_instant_and_count(instant_name: str, instant: datetime, count_name: str, count: int, maximum: int) -> None:
    """Report a bad instant and a bad count together, so the caller fixes both at once."""
    collector = _violation_collector_for(instant_name, instant)
    _add_count_violation(collector, count_name, count, maximum)
    collector.raise_if_any()


def _violation(field_path: str, description: str) -> FieldViolation:
    return FieldViolation(field_path, description)
