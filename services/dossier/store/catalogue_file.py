"""Reading a procedure catalogue file and loading it into the database (the I/O edge).

A procedure's agency must be in the agency directory (kit/data/agencies.toml): its letters are
signed with that agency's seal and its grants name it, so a line naming any other agency is
refused like any other bad line."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from kit.agencies import AgencyDirectory, directory
from kit.errors import InvalidArgument
from services.dossier.domain.procedures import CATALOGUE_COLUMNS, Procedure, parse_procedure
from services.dossier.store import procedures as procedure_store

SHIPPED_CATALOGUE = Path(__file__).resolve().parents[1] / "data" / "procedures.csv"


class CatalogueFileError(Exception):
    """The file cannot be read as a catalogue at all (missing, not CSV, wrong header)."""


@dataclass
class CatalogueFile:
    procedures: list[Procedure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one readable line per refused line


def read_catalogue(path: Path) -> CatalogueFile:
    """Every valid line as a Procedure; every bad line as `line N: column: problem`."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            return _parse(csv.DictReader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CatalogueFileError(f"{path}: {error}") from error


def _parse(reader: csv.DictReader[str]) -> CatalogueFile:
    missing = sorted(set(CATALOGUE_COLUMNS) - set(reader.fieldnames or []))
    if missing:
        raise CatalogueFileError(f"header lacks columns {missing}; expected {list(CATALOGUE_COLUMNS)}")
    result = CatalogueFile()
    agencies = directory()
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        try:
            procedure = parse_procedure(row)
        except InvalidArgument as error:
            result.errors.extend(f"line {line}: {v.field}: {v.description}" for v in error.violations)
            continue
        unknown_agency = _unknown_agency(procedure, agencies)
        if unknown_agency:
            result.errors.append(f"line {line}: agency_code: {unknown_agency}")
            continue
        if procedure.code in first_line:
            result.errors.append(f"line {line}: code: {procedure.code} already on line {first_line[procedure.code]}")
            continue
        first_line[procedure.code] = line
        result.procedures.append(procedure)
    return result


def _unknown_agency(procedure: Procedure, agencies: AgencyDirectory) -> str:
    if procedure.agency_code in agencies:
        return ""
    return f"{procedure.agency_code} is not in the agency directory (kit/data/agencies.toml)"


def load_catalogue(session: Session, procedures: list[Procedure], chunk: int = 500) -> None:
    for start in range(0, len(procedures), chunk):
        procedure_store.upsert_procedures(session, procedures[start : start + chunk])
