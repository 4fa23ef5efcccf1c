"""``dnc-gateway scrub``: files in, cleaned file, rejects and summary out; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import cli


def test_cli(sample_config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "calls.csv"
    src.write_bytes(b"0612000001\n0612345678\nabc\n")
    out = tmp_path / "clean.csv"
    code = cli.main(["--config", str(sample_config_path), "scrub", str(src), "-o", str(out), "--campaign", "legacy",
                     "--at", "2026-11-24T10:30:00+01:00", "--summary-json", str(tmp_path / "s.json")])
    assert code == 0
    assert out.read_bytes() == b"0612345678\n"
    assert (tmp_path / "clean.csv.rejects.csv").read_bytes().count(b"\n") == 3
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["by_reason"] == {"opposition_list": 1, "invalid_number": 1}
    assert report["invalid"]["lines"] == [{"line": 3, "detail": "letters in the number"}]
    captured = capsys.readouterr()
    assert "3 lines: 1 kept, 2 removed" in captured.out
    assert "scrub:" not in captured.err  # no progress bar outside a terminal
    assert cli.main(["--config", str(sample_config_path), "scrub", str(src), "-o", str(out), "--campaign", "nope"]) == 2
    assert cli.main(["--config", str(sample_config_path), "scrub", str(src), "-o", str(out), "--campaign", "legacy",
                     "--at", "2026-11-24T10:30:00"]) == 2
    assert cli.main(["--config", str(sample_config_path), "scrub", str(src), "-o", str(src), "--campaign",
                     "legacy"]) == 2
