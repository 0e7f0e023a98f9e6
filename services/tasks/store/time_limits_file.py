"""Reads the petition time limits (operator data, TOML) into the domain's `TimeLimit`s."""

from __future__ import annotations

import tomllib
from pathlib import Path

from services.tasks.domain.petitions_kinds import PetitionKind
from services.tasks.domain.time_limits import TimeLimit, TimeLimitDataError, parse_time_limits

SHIPPED_TIME_LIMITS = Path(__file__).resolve().parent.parent / "data" / "petition_time_limits.toml"


def load_time_limits(path: Path | None = None) -> dict[PetitionKind, TimeLimit]:
    source = path or SHIPPED_TIME_LIMITS
    try:
        return parse_time_limits(tomllib.loads(source.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, TimeLimitDataError) as error:
        raise TimeLimitDataError(f"{source}: {error}") from error
