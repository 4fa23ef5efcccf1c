"""Issue 13: what ``registry entries`` records decides (``check`` reads the side store on top of the lists)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from tests.conftest import FIXED_NOW


def check(conf: Path, number: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["--config", str(conf), "check", number, "--campaign", "prospect", "--at", FIXED_NOW.isoformat(),
                 "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_entries_add_and_revoke_decide(sample_config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = str(sample_config_path)
    assert check(sample_config_path, "0612000077", capsys)["reason"] == "no_consent"
    assert main(["--config", conf, "registry", "entries", "add", "0612000077", "--list", "consent",
                 "--date", "2026-11-01", "--source", "web form", "--evidence", "f-77"]) == 0
    capsys.readouterr()
    allowed = check(sample_config_path, "0612000077", capsys)
    assert (allowed["verdict"], allowed["basis"]) == ("ALLOW", "consent")
    assert main(["--config", conf, "registry", "entries", "revoke", "0612000077", "--list", "consent",
                 "--date", "2026-11-10", "--source", "letter"]) == 0
    capsys.readouterr()
    assert check(sample_config_path, "0612000077", capsys)["reason"] == "no_consent"
    # An opt-out entry for an internal_dnc list blocks at once.
    assert check(sample_config_path, "0612000010", capsys)["verdict"] == "ALLOW"
    assert main(["--config", conf, "registry", "entries", "add", "0612000010", "--list", "company-dnc",
                 "--kind", "optout", "--date", "2026-11-10", "--source", "email"]) == 0
    capsys.readouterr()
    assert check(sample_config_path, "0612000010", capsys)["reason"] == "internal_dnc"


def test_entries_without_a_config_go_to_the_store_proof_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Without -c the entries are checked against the demo config: they must land in its data dir's side store
    (where serve and proof read), not in the working directory's (they were invisible to both)."""
    data, elsewhere = tmp_path / "demo", tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["--data-dir", str(data), "registry", "entries", "add", "0612000012", "--list", "consent",
                 "--date", "2026-11-01", "--source", "web form"]) == 0
    assert not (elsewhere / "registry-side.db").exists() and (data / "registry-side.db").is_file()
    capsys.readouterr()
    # `registry proof` (the dossier's part without an audit trail: none exists before the first call is served)
    assert main(["--data-dir", str(data), "registry", "proof", "0612000012", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["store"] == str(data / "registry-side.db")
    assert [e["source"] for e in report["entries"]] == ["web form"]
