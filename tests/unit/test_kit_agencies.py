"""The agency directory (kit/data/agencies.toml): the one list of agency codes the platform uses."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kit.agencies import DEFAULT_FILE, directory, directory_file, parse
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE


def test_every_agency_of_the_procedure_catalogue_is_in_the_directory_and_signs() -> None:
    with SHIPPED_CATALOGUE.open(encoding="utf-8-sig", newline="") as file:
        owners = {row["agency_code"] for row in csv.DictReader(file)}
    agencies = directory()
    assert len(owners) == 20
    assert agencies.unknown(owners) == []
    assert owners <= set(agencies.signing_agencies())


def test_the_directory_names_the_agencies_that_own_no_procedure() -> None:
    agencies = directory()
    for code in ("CATP", "TTPVHCC", "TTCDS", "CDVC", "TTDH", "UBND-TP"):
        assert code in agencies
    parent = agencies.parent_of("P-BENNGHE")
    assert parent is not None and parent.code == "Q1"


def test_a_duplicate_code_an_unknown_parent_or_a_bad_code_is_refused() -> None:
    entry = '[[agency]]\ncode = "{code}"\nname = "x"\nparent = "{parent}"\n'
    with pytest.raises(ValueError, match="more than once"):
        parse(entry.format(code="SXD", parent="") * 2)
    with pytest.raises(ValueError, match="parent 'NOWHERE'"):
        parse(entry.format(code="SXD", parent="NOWHERE"))
    with pytest.raises(ValueError, match="must match"):
        parse(entry.format(code="so tu phap", parent=""))


def test_a_broken_file_names_itself(tmp_path: Path) -> None:
    broken = tmp_path / "agencies.toml"
    broken.write_text("[[agency]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=str(broken)):
        directory_file(broken)
    assert directory_file(DEFAULT_FILE).codes() == directory().codes()
