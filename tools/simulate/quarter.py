"""Ho Chi Minh City's Q1/2022 dossier figures and how they scale. Pure.

The seed (the city's report for 1 Jan - 31 Mar 2022): 5,330,464 dossiers received, 5,220,139
resolved, of which 5,212,990 on time and 7,149 late (each owed an apology letter), and 110,325
still open at the end of the quarter.

Rounding rule at scale s: the three leaf counts are rounded half up independently
(on_time = ⌊5,212,990·s + ½⌋, late = ⌊7,149·s + ½⌋, open = ⌊110,325·s + ½⌋) and the totals are
their sums (resolved = on_time + late, received = resolved + open), so the identities hold
exactly at every scale and scale 1.0 gives the seed exactly. Each total then differs from its
own rounded product by at most 1 (received) or 1 (resolved).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from kit.deadlines.calendar import LOCAL_TIME

SEED_RECEIVED = 5_330_464
SEED_RESOLVED = 5_220_139
SEED_ON_TIME = 5_212_990
SEED_LATE = 7_149
SEED_OPEN = 110_325

QUARTER_FIRST_DAY = date(2022, 1, 1)
QUARTER_LAST_DAY = date(2022, 3, 31)
# The first instant after the quarter: midnight starting 1 April 2022, Ho Chi Minh City time.
QUARTER_END = datetime.combine(QUARTER_LAST_DAY + timedelta(days=1), datetime.min.time(), tzinfo=LOCAL_TIME)
QUARTER_START = datetime.combine(QUARTER_FIRST_DAY, datetime.min.time(), tzinfo=LOCAL_TIME)


@dataclass(frozen=True)
class QuarterCounts:
    on_time: int
    late: int
    open: int

    @property
    def resolved(self) -> int:
        return self.on_time + self.late

    @property
    def received(self) -> int:
        return self.resolved + self.open

    def as_table(self) -> list[tuple[str, int]]:
        return [
            ("received", self.received),
            ("resolved", self.resolved),
            ("resolved on time", self.on_time),
            ("resolved late (apology letters)", self.late),
            ("open at quarter end", self.open),
        ]


def _round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def scaled_counts(scale: float) -> QuarterCounts:
    """The quarter's counts at `scale` (1.0 = the real quarter), by the module's rounding rule."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    factor = Decimal(str(scale))
    return QuarterCounts(
        on_time=_round_half_up(SEED_ON_TIME * factor),
        late=_round_half_up(SEED_LATE * factor),
        open=_round_half_up(SEED_OPEN * factor),
    )
