"""A Ho Chi Minh City-shaped quarter of dossiers, planned step by step. Pure and deterministic.

Every planned dossier says what the dossier service will conclude when it replays it, because
the plan computes deadlines with the service's own rules (`Procedure.due_at` on the same
`WorkingCalendar`) and places each step so the outcome is certain:

* received on a working day of the quarter, inside office hours;
* ONLINE only for procedures at online level 3/4 (level 4 with a fee first waits for payment,
  and the deadline starts at the payment);
* on time: accepted and resolved no later than the due instant (so no step is overdue);
* late: resolved strictly after the due instant, inside office hours, before the quarter ends
  (the service then publishes one dossier.overdue + dossier.apology_required for it);
* open at quarter end: its due instant falls after the quarter, so it is not overdue at
  quarter end. With `close_open_after_quarter` it is resolved on time in April, so a service
  whose clock is today owes no apology for it; otherwise it stays RECEIVED / IN_PROGRESS.

Outcomes are drawn by sequential sampling without replacement, so the counts are exact.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from itertools import accumulate

from kit.deadlines.calendar import LOCAL_TIME, WorkingCalendar
from services.dossier.domain.lifecycle import ApplicantKind, Channel, State
from services.dossier.domain.procedures import AuthorityLevel, Procedure, TimeUnit
from tools.simulate.quarter import QUARTER_END, QUARTER_FIRST_DAY, QUARTER_LAST_DAY, QuarterCounts

# Most HCMC dossiers are commune and district ones (civil status, certification); the catalogue
# has far more city procedures, so each lower-tier procedure weighs more.
LEVEL_WEIGHT = {AuthorityLevel.COMMUNE: 40.0, AuthorityLevel.DISTRICT: 8.0, AuthorityLevel.CITY: 1.0}
ONLINE_SHARE = {2: 0.0, 3: 0.25, 4: 0.5}
POST_SHARE_OF_OFFLINE = 0.07
BUSINESS_SHARE = 0.2
RETURNED_SHARE = 0.85
ACCEPTED_SHARE_OF_OPEN = 0.8
MAX_TRIES = 200
ONE_MINUTE = timedelta(minutes=1)


class Outcome(StrEnum):
    ON_TIME = "ON_TIME"
    LATE = "LATE"
    OPEN = "OPEN"


@dataclass(frozen=True)
class PlannedStep:
    action: str  # PAY, ACCEPT, RESOLVE or RETURN
    at: datetime
    payment_reference: str = ""
    amount_vnd: int = 0


@dataclass(frozen=True)
class PlannedDossier:
    import_key: str
    procedure: Procedure
    applicant_registry_id: str
    applicant_kind: ApplicantKind
    channel: Channel
    received_at: datetime
    steps: tuple[PlannedStep, ...]
    outcome: Outcome
    due_at: datetime  # the due instant of the deadline the outcome is judged against
    final_state: State


@dataclass(frozen=True)
class ApplicantPool:
    """Registry ids of registered applicants the planned dossiers are spread over (dossier n goes
    to the (n mod size)-th of its kind), for a dossier service that checks applicants against the
    registry. Without a pool every dossier gets a synthetic id `<run id>-C<n>` / `<run id>-B<n>`."""

    citizens: tuple[str, ...]
    businesses: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.citizens or not self.businesses:
            raise ValueError("an applicant pool needs at least one citizen and one business")

    def pick(self, kind: ApplicantKind, number: int) -> str:
        ids = self.citizens if kind is ApplicantKind.CITIZEN else self.businesses
        return ids[number % len(ids)]


class QuarterPlanner:
    """Plans `counts` dossiers; the same seed gives the same plan (whatever the applicant pool)."""

    def __init__(
        self,
        calendar: WorkingCalendar,
        procedures: Sequence[Procedure],
        *,
        seed: int,
        run_id: str,
        close_open_after_quarter: bool,
        applicants: ApplicantPool | None = None,
    ) -> None:
        self._calendar = calendar
        self._applicants = applicants
        self._rng = random.Random(seed)
        self._run_id = run_id
        self._close_open = close_open_after_quarter
        self._working_days = _working_days(calendar, QUARTER_FIRST_DAY, QUARTER_LAST_DAY)
        in_force = sorted(
            (p for p in procedures if p.in_force_on(QUARTER_LAST_DAY)), key=lambda procedure: procedure.code
        )
        self._procedures = in_force
        weights = [LEVEL_WEIGHT[p.authority_level] * self._rng.lognormvariate(0, 1) for p in in_force]
        self._cumulative = list(accumulate(weights))
        day_based = [(p, w) for p, w in zip(in_force, weights, strict=True) if p.time_unit is TimeUnit.WORKING_DAYS]
        self._day_procedures = [p for p, _ in day_based]
        self._day_cumulative = list(accumulate(w for _, w in day_based))

    def plan(self, counts: QuarterCounts) -> Iterator[PlannedDossier]:
        left = {Outcome.ON_TIME: counts.on_time, Outcome.LATE: counts.late, Outcome.OPEN: counts.open}
        for number in range(1, counts.received + 1):
            outcome = self._draw_outcome(left)
            left[outcome] -= 1
            yield self._plan_one(number, outcome)

    def _draw_outcome(self, left: dict[Outcome, int]) -> Outcome:
        pick = self._rng.randrange(sum(left.values()))
        for outcome, remaining in left.items():
            if pick < remaining:
                return outcome
            pick -= remaining
        raise AssertionError("unreachable: pick < total")

    def _plan_one(self, number: int, outcome: Outcome) -> PlannedDossier:
        for _ in range(MAX_TRIES):
            planned = self._try_plan(number, outcome)
            if planned is not None:
                return planned
        raise RuntimeError(f"could not place dossier {number} ({outcome}) in the quarter after {MAX_TRIES} tries")

    def _try_plan(self, number: int, outcome: Outcome) -> PlannedDossier | None:
        rng = self._rng
        procedure = self._pick_procedure(day_based_only=outcome is Outcome.OPEN)
        channel = self._pick_channel(procedure)
        received_at = self._receipt_instant(procedure, outcome)
        steps: list[PlannedStep] = []
        clock_start = received_at
        if channel is Channel.ONLINE and procedure.requires_online_payment():
            clock_start = received_at + timedelta(minutes=rng.uniform(5, 180))
            steps.append(PlannedStep("PAY", clock_start, f"{self._run_id}-PAY{number}", procedure.fee_vnd))
        due = procedure.due_at(self._calendar, clock_start)
        limit = min(due, QUARTER_END) if outcome is not Outcome.LATE else QUARTER_END
        accept_at = clock_start + min(timedelta(hours=4), (limit - clock_start) * 0.2) * rng.random() + ONE_MINUTE
        if outcome is Outcome.OPEN:
            if due < QUARTER_END:
                return None
            final, later = self._open_steps(accept_at, due)
        else:
            resolved_at = self._resolution(accept_at, due, late=outcome is Outcome.LATE)
            if resolved_at is None:
                return None
            final, later = self._resolved_steps(accept_at, resolved_at)
        kind = ApplicantKind.BUSINESS if rng.random() < BUSINESS_SHARE else ApplicantKind.CITIZEN
        applicant = (
            self._applicants.pick(kind, number) if self._applicants else f"{self._run_id}-{kind.value[0]}{number:07d}"
        )
        return PlannedDossier(
            import_key=f"{self._run_id}-{number:07d}",
            procedure=procedure,
            applicant_registry_id=applicant,
            applicant_kind=kind,
            channel=channel,
            received_at=received_at,
            steps=(*steps, *later),
            outcome=outcome,
            due_at=due,
            final_state=final,
        )

    # --- choices ----------------------------------------------------------------------------

    def _pick_procedure(self, day_based_only: bool) -> Procedure:
        procedures, cumulative = (
            (self._day_procedures, self._day_cumulative) if day_based_only else (self._procedures, self._cumulative)
        )
        index = bisect(cumulative, self._rng.random() * cumulative[-1])
        return procedures[min(index, len(procedures) - 1)]

    def _pick_channel(self, procedure: Procedure) -> Channel:
        draw = self._rng.random()
        online = ONLINE_SHARE.get(procedure.online_level, 0.0)
        if draw < online:
            return Channel.ONLINE
        return Channel.POST if draw < online + (1 - online) * POST_SHARE_OF_OFFLINE else Channel.COUNTER

    def _receipt_instant(self, procedure: Procedure, outcome: Outcome) -> datetime:
        """Inside office hours on a working day; an open dossier comes in during the last
        `processing_time` working days, so its deadline runs past the quarter."""
        days = self._working_days
        if outcome is Outcome.OPEN:
            days = days[-procedure.processing_time :]
        day = self._rng.choice(days)
        hours = self._calendar.office_hours
        opens = datetime.combine(day, hours.opens, tzinfo=LOCAL_TIME)
        span = (datetime.combine(day, hours.closes, tzinfo=LOCAL_TIME) - opens).total_seconds()
        return opens + timedelta(seconds=int(self._rng.random() * (span - 60)))

    def _resolution(self, accept_at: datetime, due: datetime, late: bool) -> datetime | None:
        rng = self._rng
        if late:
            resolved = self._snap_forward(due + timedelta(hours=rng.uniform(0.25, 72)))
            return resolved if due < resolved < QUARTER_END - ONE_MINUTE else None
        latest = min(due, QUARTER_END - ONE_MINUTE)
        if latest - accept_at < 2 * ONE_MINUTE:
            return None
        candidate = accept_at + ONE_MINUTE + (latest - accept_at - 2 * ONE_MINUTE) * rng.uniform(0.05, 1.0)
        snapped = self._snap_back(candidate)
        return snapped if accept_at < snapped <= latest else candidate

    def _resolved_steps(self, accept_at: datetime, resolved_at: datetime) -> tuple[State, list[PlannedStep]]:
        steps = [PlannedStep("ACCEPT", accept_at), PlannedStep("RESOLVE", resolved_at)]
        if self._rng.random() < RETURNED_SHARE:
            returned_at = self._snap_forward(resolved_at + timedelta(hours=self._rng.uniform(1, 48)))
            if returned_at < QUARTER_END:
                steps.append(PlannedStep("RETURN", returned_at))
                return State.RETURNED, steps
        return State.RESOLVED, steps

    def _open_steps(self, accept_at: datetime, due: datetime) -> tuple[State, list[PlannedStep]]:
        accepted = accept_at < QUARTER_END and self._rng.random() < ACCEPTED_SHARE_OF_OPEN
        if not self._close_open:
            return (State.IN_PROGRESS, [PlannedStep("ACCEPT", accept_at)]) if accepted else (State.RECEIVED, [])
        accept_at = accept_at if accepted else max(accept_at, QUARTER_END + ONE_MINUTE)
        resolved_at = QUARTER_END + ONE_MINUTE + (due - QUARTER_END - 2 * ONE_MINUTE) * self._rng.uniform(0.05, 0.95)
        resolved_at = max(resolved_at, accept_at + ONE_MINUTE)
        return State.RESOLVED, [PlannedStep("ACCEPT", accept_at), PlannedStep("RESOLVE", resolved_at)]

    # --- office hours -----------------------------------------------------------------------

    def _snap_forward(self, instant: datetime) -> datetime:
        """The instant if it is inside office hours on a working day, else a few minutes after
        the next opening."""
        local = instant.astimezone(LOCAL_TIME)
        hours = self._calendar.office_hours
        if self._calendar.is_working_day(local.date()) and hours.opens <= local.time() < hours.closes:
            return instant
        day = local.date()
        if not (self._calendar.is_working_day(day) and local.time() < hours.opens):
            day = self._calendar.next_working_day(day)
        return datetime.combine(day, hours.opens, tzinfo=LOCAL_TIME) + timedelta(minutes=self._rng.uniform(1, 90))

    def _snap_back(self, instant: datetime) -> datetime:
        """The instant if inside office hours on a working day, else the previous closing time."""
        local = instant.astimezone(LOCAL_TIME)
        hours = self._calendar.office_hours
        day = local.date()
        if self._calendar.is_working_day(day) and hours.opens <= local.time() <= hours.closes:
            return instant
        if not (self._calendar.is_working_day(day) and local.time() > hours.closes):
            day = _previous_working_day(self._calendar, day)
        return datetime.combine(day, hours.closes, tzinfo=LOCAL_TIME) - timedelta(minutes=self._rng.uniform(1, 60))


def _working_days(calendar: WorkingCalendar, first: date, last: date) -> list[date]:
    days, day = [], first
    while day <= last:
        if calendar.is_working_day(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def _previous_working_day(calendar: WorkingCalendar, day: date) -> date:
    for back in range(1, 32):
        candidate = day - timedelta(days=back)
        if calendar.is_working_day(candidate):
            return candidate
    raise RuntimeError(f"no working day within a month before {day}")
