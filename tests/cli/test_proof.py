"""``dnc-gateway proof``: the dossier in every format, its exit codes, and ``registry proof`` still answering."""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli import proof as proof_command
from tests.proof.history import tamper


@pytest.fixture(autouse=True)
def now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proof_command, "clock", lambda: datetime(2026, 11, 25, 9, 0, tzinfo=UTC))


def test_formats(history: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf, ids = history
    base = ["--config", str(conf), "proof", "06 12 00 00 10"]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert out.startswith("Proof dossier for +33612000010 (shown in full: admin use only)")
    assert "10 calls to +33612000010" in out and "10 appels vers +33612000010" in out
    assert all(f"id={i}" in out for i in ids) and "retention: consent proof kept 3 years" in out
    assert main([*base, "--format", "json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert [x["decision_id"] for x in j["decisions"]] == ids
    for fmt, magic in (("html", b"<!doctype html>"), ("pdf", b"%PDF-")):
        if fmt == "pdf":
            pytest.importorskip("fpdf", reason="fpdf2 (the pdf extra) is not installed")
        out_file = tmp_path / f"d.{fmt}"
        assert main([*base, "--format", fmt, "-o", str(out_file)]) == 0
        assert out_file.read_bytes().startswith(magic)
        assert stat.S_IMODE(out_file.stat().st_mode) == 0o600  # personal data
        assert f"written to {out_file}" in capsys.readouterr().err


def test_since_until_and_bad_input(history: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    conf, ids = history
    base = ["--config", str(conf), "proof", "0612000010", "--format", "json"]
    assert main([*base, "--since", "2026-10-01", "--until", "2026-10-13"]) == 0  # the config's zone: Paris
    j = json.loads(capsys.readouterr().out)
    assert [x["decision_id"] for x in j["decisions"]] == ids[4:7]
    assert main([*base, "--since", "2026-10-13", "--until", "2026-10-01"]) == 2
    assert "is not after" in capsys.readouterr().err
    assert main(["--config", str(conf), "proof", "abc"]) == 2


def test_a_tampered_record_fails_the_command(history: tuple[Path, list[str]],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    conf, ids = history
    tamper(conf.parent / "audit.db", ids[7], reason="exempt_contract")
    assert main(["--config", str(conf), "proof", "0612000010"]) == 1
    out, err = capsys.readouterr()
    assert f"id={ids[7]}" in out and "CHAIN MODIFIED" in out and "WARNING: 1 of 10" in out
    assert "1 audit record(s) of +33612000010 do not check against the hash chain" in err


def test_registry_proof_reads_through_the_dossier(history: tuple[Path, list[str]],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    conf, _ = history
    assert main(["--config", str(conf), "registry", "proof", "0612000010", "--at", "2026-11-25T10:00:00+01:00",
                 "--json"]) == 0
    legacy = json.loads(capsys.readouterr().out)
    assert [e["given_on"] for e in legacy["entries"]] == ["2026-08-20", "2026-10-20"]
    assert legacy["lists"]["consent"]["member"] is True
    assert legacy["state"]["last_refusal"] == "2026-10-05T12:00:00+00:00"
    assert legacy["decisions"]["prospect"]["reason"] == "refusal_cooldown"
    assert main(["--config", str(conf), "registry", "proof", "0612000010"]) == 0
    assert "dnc-gateway proof +33612000010" in capsys.readouterr().out


def test_whole_chain(history: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    """--whole-chain walks the whole trail too: it finds a record of another number removed, which the number's
    own records cannot show."""
    conf, _ = history
    base = ["--config", str(conf), "proof", "0612000010", "--format", "json", "--whole-chain"]
    assert main(base) == 0
    whole = json.loads(capsys.readouterr().out)["chain"]["whole_trail"]
    assert whole["ok"] is True and whole["message"].startswith("audit chain intact: 30 records")
    conn = sqlite3.connect(str(conf.parent / "audit.db"), isolation_level=None)
    conn.execute("DELETE FROM audit WHERE seq = 3")  # the call to another number just after our seq 2
    conn.close()
    assert main(base) == 1  # seq 2 is ours: its successor is gone
    j = json.loads(capsys.readouterr().out)
    chain = j["chain"]
    assert "WARNING: the whole audit trail is broken (audit chain BROKEN at seq 3" in j["summary"]["en"]
    assert chain["whole_trail"]["ok"] is False and "seq 3 removed" in chain["whole_trail"]["message"]
    assert chain["problems"][0]["problem"] == "record seq 3, just after it, was removed"
