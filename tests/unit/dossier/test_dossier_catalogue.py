"""The shipped procedure catalogue and how catalogue lines are checked."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from services.dossier.cli.catalogue import main as catalogue_cli
from services.dossier.cli.catalogue_gen import generate, write_catalogue
from services.dossier.domain.procedures import CATALOGUE_COLUMNS
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, CatalogueFileError, read_catalogue

HEADER = ",".join(CATALOGUE_COLUMNS)


def test_shipped_catalogue_has_the_city_shape() -> None:
    catalogue = read_catalogue(SHIPPED_CATALOGUE)
    assert catalogue.errors == []
    in_force = [p for p in catalogue.procedures if p.abolished_from is None]
    assert len(in_force) == 1733
    assert Counter(p.authority_level.value for p in in_force) == {"CITY": 1421, "DISTRICT": 199, "COMMUNE": 113}
    assert Counter(p.online_level for p in in_force) == {2: 928, 3: 454, 4: 351}
    assert len(catalogue.procedures) > len(in_force), "a few abolished procedures are kept for history"
    assert len({p.agency_code for p in catalogue.procedures}) == 20


def test_shipped_file_is_what_the_generator_writes(tmp_path: Path) -> None:
    regenerated = tmp_path / "procedures.csv"
    write_catalogue(generate(), regenerated)
    assert regenerated.read_bytes() == SHIPPED_CATALOGUE.read_bytes()


def test_bad_lines_are_reported_with_line_and_column_and_good_lines_kept(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                "1.1,Cấp phép,Xây dựng,CITY,SXD,Sở Xây dựng,15,WORKING_DAYS,3,0,active,",
                "1.2,Cấp phép,Xây dựng,TOWN,SXD,Sở Xây dựng,fifteen,WORKING_DAYS,5,-1,active,",
                "1.3,Cấp phép,Xây dựng,CITY,SXD,Sở Xây dựng,15,WORKING_DAYS,2,0,abolished,someday",
                "1.1,Trùng mã,Xây dựng,CITY,SXD,Sở Xây dựng,15,WORKING_DAYS,3,0,active,",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    catalogue = read_catalogue(path)
    assert [p.code for p in catalogue.procedures] == ["1.1"]
    assert catalogue.errors == [
        "line 3: authority_level: must be one of CITY, DISTRICT, COMMUNE, got 'TOWN'",
        "line 3: processing_time: must be a whole number, got 'fifteen'",
        "line 3: online_level: must be between 2 and 4, got 5",
        "line 3: fee_vnd: must be between 0 and 1000000000, got -1",
        "line 4: abolished_from: an abolished procedure needs a YYYY-MM-DD date, got 'someday'",
        "line 5: code: 1.1 already on line 2",
    ]


def test_a_procedure_of_an_agency_missing_from_the_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.csv"
    lines = [
        HEADER,
        "1.1,Cấp phép,Xây dựng,CITY,SXD,Sở Xây dựng,15,WORKING_DAYS,3,0,active,",
        "1.2,Chứng thực,Chứng thực,CITY,SO-TU-PHAP,Sở Tư pháp,1,WORKING_DAYS,3,0,active,",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    catalogue = read_catalogue(path)
    assert [p.code for p in catalogue.procedures] == ["1.1"]
    assert catalogue.errors == [
        "line 3: agency_code: SO-TU-PHAP is not in the agency directory (kit/data/agencies.toml)"
    ]


def test_a_file_without_the_catalogue_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(CatalogueFileError, match="header lacks columns"):
        read_catalogue(path)


def test_cli_loads_twice_idempotently_and_exits_1_on_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'dossier.db'}"
    assert catalogue_cli(["load", str(SHIPPED_CATALOGUE), "--database-url", url]) == 0
    assert catalogue_cli(["load", str(SHIPPED_CATALOGUE), "--database-url", url]) == 0
    assert "loaded 1760 procedures; 0 problems" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\n1.000001,Đổi tên,Tôn giáo,CITY,SNV,Sở Nội vụ,0,WORKING_DAYS,2,0,active,\n")
    assert catalogue_cli(["load", str(bad), "--database-url", url]) == 1
    assert "line 2: processing_time: must be between 1 and 1000, got 0" in capsys.readouterr().err
    assert catalogue_cli(["load", str(tmp_path / "missing.csv"), "--database-url", url]) == 2
