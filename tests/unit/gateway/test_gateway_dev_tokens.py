"""`make run`'s generated dev tokens follow the policy: kept across restarts, rewritten when the
policy's agencies change (a var/ from before the agency directory names SO-TU-PHAP, not STP)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kit.config import REPO_ROOT
from services.gateway.app import generated_dev_tokens

POLICY = REPO_ROOT / "deploy" / "gateway" / "policy.toml"


def _agencies(path: Path) -> set[str]:
    return set(tomllib.loads(path.read_text(encoding="utf-8"))["tokens"].values())


def test_tokens_are_kept_while_the_agencies_stay_and_rewritten_when_they_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYDATA_VAR", str(tmp_path))
    path = tmp_path / "gateway" / "dev-tokens.toml"
    path.parent.mkdir(parents=True)
    path.write_text('[tokens]\n"dev-so-tu-phap-1" = "SO-TU-PHAP"\n', encoding="utf-8")

    generated_dev_tokens(POLICY)
    first = path.read_text(encoding="utf-8")
    generated_dev_tokens(POLICY)

    assert "STP" in _agencies(path) and "SO-TU-PHAP" not in _agencies(path)
    assert path.read_text(encoding="utf-8") == first
    assert path.stat().st_mode & 0o777 == 0o600
