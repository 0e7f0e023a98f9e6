"""Loads a procedure catalogue into the dossier database.

    python -m services.dossier.cli.catalogue load services/dossier/data/procedures.csv
    python -m services.dossier.cli.catalogue load FILE --database-url postgresql+psycopg://...

Idempotent: codes already present are overwritten with the file's values. Valid lines are
loaded even when others are refused; each refused line is printed as `line N: column: problem`
and the exit status is then 1 (2 when the file cannot be read at all).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from kit.config import load_settings
from kit.db import make_engine
from kit.migrations import upgrade_to_head
from services.dossier import store
from services.dossier.store.catalogue_file import CatalogueFileError, load_catalogue, read_catalogue


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.dossier.cli.catalogue", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load", help="upsert a catalogue CSV into the database")
    load.add_argument("file", type=Path)
    load.add_argument("--database-url", default=None, help="default: the dossier service's DATABASE_URL")
    args = parser.parse_args(argv)
    try:
        catalogue = read_catalogue(args.file)
    except CatalogueFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in catalogue.errors:
        print(f"{args.file}: {problem}", file=sys.stderr)
    engine = make_engine(args.database_url or load_settings("dossier").database_url)
    upgrade_to_head(engine, "dossier", store.metadata)
    with Session(engine) as session, session.begin():
        load_catalogue(session, catalogue.procedures)
    engine.dispose()
    print(f"loaded {len(catalogue.procedures)} procedures; {len(catalogue.errors)} problems")
    return 1 if catalogue.errors else 0


if __name__ == "__main__":
    sys.exit(main())
