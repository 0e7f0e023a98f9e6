"""The city's agency directory (kit/data/agencies.toml): one code per agency, used everywhere.

Pure data and lookups; no I/O beyond reading the directory file once.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parent / "data" / "agencies.toml"
CODE = re.compile(r"^[A-Z][A-Z0-9-]{1,15}$")
LEVELS = frozenset({"CITY", "DISTRICT", "COMMUNE", "OTHER"})


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    name_en: str
    parent: str
    level: str
    signs: bool


class AgencyDirectory:
    def __init__(self, agencies: list[Agency]) -> None:
        self._by_code = {agency.code: agency for agency in agencies}
        counts = Counter(agency.code for agency in agencies)
        problems = [f"{code}: listed more than once" for code, count in sorted(counts.items()) if count > 1]
        problems += [
            f"{a.code}: parent {a.parent!r} is not in the directory"
            for a in agencies
            if a.parent and a.parent not in self._by_code
        ]
        if problems:
            raise ValueError("; ".join(problems))

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._by_code.values())

    def get(self, code: str) -> Agency | None:
        return self._by_code.get(code)

    def parent_of(self, code: str) -> Agency | None:
        agency = self._by_code.get(code)
        return self._by_code.get(agency.parent) if agency and agency.parent else None

    def signing_agencies(self) -> list[str]:
        """Codes of the agencies that have an issuing CA and a seal, in directory order."""
        return [agency.code for agency in self._by_code.values() if agency.signs]

    def codes(self) -> frozenset[str]:
        return frozenset(self._by_code)

    def unknown(self, codes: Iterable[str]) -> list[str]:
        """The codes (sorted, once each) that name no agency of the directory."""
        return sorted({code for code in codes if code not in self._by_code})


def parse(text: str) -> AgencyDirectory:
    entries = tomllib.loads(text).get("agency", [])
    agencies: list[Agency] = []
    for index, entry in enumerate(entries):
        code = str(entry.get("code", ""))
        if not CODE.match(code):
            raise ValueError(f"agency[{index}].code: {code!r} must match {CODE.pattern}")
        level = str(entry.get("level", "OTHER"))
        if level not in LEVELS:
            raise ValueError(f"agency {code}: level {level!r} is not one of {sorted(LEVELS)}")
        agencies.append(
            Agency(
                code=code,
                name=str(entry["name"]),
                name_en=str(entry.get("name_en", entry["name"])),
                parent=str(entry.get("parent", "")),
                level=level,
                signs=bool(entry.get("signs", False)),
            )
        )
    return AgencyDirectory(agencies)


@lru_cache(maxsize=1)
def directory() -> AgencyDirectory:
    """The directory in force: CITYDATA_AGENCIES_FILE, or the one shipped with the platform.
    Read once per process; a change needs a restart of the services."""
    return directory_file(Path(os.environ.get("CITYDATA_AGENCIES_FILE") or DEFAULT_FILE))


def directory_file(path: Path) -> AgencyDirectory:
    """The directory in `path`; ValueError names the file and the problem."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        raise ValueError(f"agency directory {path}: {exc}") from None
