"""``dnc-gateway registry build | info | diff | merge | proof | entries`` end to end."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway import cli
from gateway.config import load
from gateway.registry import snapshot
from gateway.service import Gateway
from tests.conftest import write_sample


def run(*argv: str) -> int:
    """``registry ARGV``; leading ``--config FILE`` goes before the command, as the CLI wants it."""
    if argv[:1] == ("--config",):
        return cli.main([*argv[:2], "registry", *argv[2:]])
    return cli.main(["registry", *argv])


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text("# as_of: 2026-11-01\n0612000001\n0612000002\nabc\n0612000003\n")
    (tmp_path / "b.csv").write_text("Telephone;Identifiant\n0612000003;X\n0612000004;Y\n")
    (tmp_path / "p.txt").write_text("0899\n+1900\n")
    return tmp_path


def test_build_with_validation_report(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = files / "ab.snap"
    assert run("build", str(files / "a.txt"), str(files / "b.csv"), "-o", str(out), "--name", "bloctel",
               "--max-bad-share", "0.5", "--report-json", str(files / "r.json")) == 0
    lst = snapshot.read(out)
    assert (lst.meta.name, lst.meta.count, str(lst.meta.as_of)) == ("bloctel", 4, "2026-11-01")
    report = json.loads((files / "r.json").read_text())
    assert report["inputs"][0]["bad_lines"] == [{"line": 4, "why": "not a phone number"}]
    assert report["inputs"][1]["format"] == "bloctel-csv"
    text = capsys.readouterr().out
    assert "4 numbers" in text and "line 4: not a phone number" in text
    # too many bad lines: refused, nothing written
    (files / "bad.txt").write_text("0612000001\n" + "abc\n" * 12)
    assert run("build", str(files / "bad.txt"), "-o", str(files / "no.snap")) == 2
    assert not (files / "no.snap").exists()
    assert run("build", str(files / "missing.txt"), "-o", str(files / "no.snap")) == 2


def test_info_diff_merge(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = files / "a.snap", files / "b.snap"
    assert run("build", str(files / "a.txt"), "-o", str(a), "--max-bad-share", "0.5") == 0
    assert run("build", str(files / "b.csv"), "-o", str(b), "--as-of", "2026-11-20") == 0
    capsys.readouterr()
    assert run("info", str(a), "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert {k: info[k] for k in ("name", "kind", "count", "as_of", "format")} == {
        "name": "a", "kind": "opposition", "count": 3, "as_of": "2026-11-01", "format": "snapshot"}
    assert info["sha256"] == snapshot.read(a).meta.sha256 and info["size"] == a.stat().st_size
    assert run("diff", str(a), str(b), "--json") == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["added"], d["removed"], d["unchanged"]) == (1, 2, 1)
    assert run("diff", str(a), str(b), "--list") == 0
    assert capsys.readouterr().out.splitlines() == ["# as_of: 2026-11-20", "++33612000004", "-+33612000001",
                                                    "-+33612000002"]
    merged = files / "m.snap"
    assert run("merge", str(a), str(b), "-o", str(merged)) == 0
    m = snapshot.read(merged)
    assert (m.meta.name, m.meta.count, str(m.meta.as_of)) == ("a", 4, "2026-11-20")
    assert run("merge", str(a), str(files / "p.txt"), "-o", str(files / "x.snap")) == 2  # prefixes are not numbers
    assert run("build", str(files / "p.txt"), "--kind", "blocked_prefixes", "-o", str(files / "p.snap")) == 0
    assert run("merge", str(a), str(files / "p.snap"), "-o", str(files / "y.snap")) == 2  # kinds differ


def test_entries_and_proof(files: Path, sample_config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(files / "side.db")
    conf = ["--config", str(sample_config_path)]
    (files / "c.csv").write_text("numero;date;source\n0612000010;2026-09-01;web form A\n")
    assert run(*conf, "entries", "import", str(files / "c.csv"), "--list", "consent", "--store", store) == 0
    assert run(*conf, "entries", "revoke", "0612000010", "--list", "consent", "--store", store, "--date",
               "2026-10-01", "--source", "refused on call 99") == 0
    assert run(*conf, "entries", "add", "+33612000010", "--list", "consent", "--store", store, "--date",
               "2026-11-02", "--source", "web form B", "--evidence", "ticket 42") == 0
    assert run(*conf, "entries", "revoke", "0612000010", "--list", "consent", "--store", store) == 2  # no source
    capsys.readouterr()
    assert cli.main(["--config", str(sample_config_path), "registry", "proof", "06 12 00 00 10", "--store", store,
                     "--json"]) == 0
    proof = json.loads(capsys.readouterr().out)
    assert proof["number"] == "+33612000010"
    assert [(e["given_on"], e["source"], e["revoked_on"]) for e in proof["entries"]] == [
        ("2026-09-01", "web form A", "2026-10-01"), ("2026-11-02", "web form B", None)]
    assert proof["lists"]["consent"]["member"] is True and proof["lists"]["bloctel"]["member"] is False
    assert run("proof", "0612000010", "--store", store) == 0
    text = capsys.readouterr().out
    assert "revoked on 2026-10-01 (refused on call 99)" in text and "evidence ticket 42" in text
    assert run("proof", "abc", "--store", store) == 2


def test_entries_refuse_unknown_lists_wrong_kinds_and_rejected_lines(
        files: Path, sample_config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 15 #6: an unknown list, an opposition list, or 3 bad lines of 4 all exited 0."""
    store = str(files / "side.db")
    conf = ["--config", str(sample_config_path)]
    assert run(*conf, "entries", "add", "0612000010", "--list", "nope", "--store", store, "--source", "x") == 2
    assert "'nope': no such list in the config (its consent or customers or inquiries lists: consent, customers)" \
        in capsys.readouterr().err
    assert run(*conf, "entries", "add", "0612000010", "--list", "bloctel", "--store", store, "--source", "x") == 2
    err = capsys.readouterr().err
    assert "'bloctel' is of kind opposition: consent entries belong to a list of kind consent or customers or " \
        "inquiries" in err
    assert run(*conf, "entries", "add", "0612000010", "--list", "consent", "--kind", "optout", "--store", store,
               "--source", "x") == 2
    assert run(*conf, "entries", "add", "0612000010", "--list", "company-dnc", "--kind", "optout", "--store", store,
               "--source", "call 7") == 0
    (files / "d.csv").write_text("numero;date;source\n0612000010;2026-09-01;form\nabc;2026-09-01;form\n"
                                 "0612000011;someday;form\n0612000012;;form\n")
    capsys.readouterr()
    assert run(*conf, "entries", "import", str(files / "d.csv"), "--list", "consent", "--store", store) == 1
    out, err = capsys.readouterr()
    assert "imported 1 of 4" in out
    assert "3 lines rejected" in err and "line 3:" in err and "line 4:" in err and "line 5:" in err


def test_proof_shows_what_decides_the_state_stores_optout_included(
        files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 15 #10: a number opted out over the API showed its consent as active and no opt-out."""
    conf = write_sample(tmp_path / "conf")
    conf.write_text(conf.read_text().replace('state = "memory://"', 'state = "sqlite://state.db"'))
    at = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

    async def record() -> None:
        gw = Gateway(load(conf), clock=lambda: at)
        await gw.start()
        await gw.optout("0612000010")
        await gw.close()

    asyncio.run(record())
    capsys.readouterr()
    assert cli.main(["--config", str(conf), "registry", "proof", "0612000010", "--at", "2026-11-24T10:30:00+01:00",
                     "--json"]) == 0
    proof = json.loads(capsys.readouterr().out)
    assert proof["lists"]["consent"]["member"] is True
    assert proof["state"]["opted_out_at"] == "2026-11-24T09:30:00+00:00"
    assert proof["decisions"]["prospect"]["reason"] == "internal_dnc"
    assert proof["decisions"]["prospect"]["rule"] == "internal_dnc.optout"
    assert cli.main(["--config", str(conf), "registry", "proof", "0612000010", "--at", "2026-11-24T10:30:00+01:00"]) \
        == 0
    text = capsys.readouterr().out
    assert "opted out 2026-11-24T09:30:00+00:00" in text
    assert "campaign prospect at 2026-11-24T10:30:00+01:00: BLOCK internal_dnc (internal_dnc.optout)" in text


def test_show_prints_how_each_prefix_line_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 15 #2: a national overseas prefix was read as +33 silently; `registry show` says how it is read."""
    conf = write_sample(tmp_path / "conf")
    (conf.parent / "premium.txt").write_text("# as_of: 2026-11-01\n0899\n0590\n+1900\nabc\n")
    capsys.readouterr()
    assert cli.main(["--config", str(conf), "registry", "show", "premium"]) == 0
    out = capsys.readouterr().out
    assert "line 2: 0899 -> +33899" in out and "line 3: 0590 -> +590590" in out
    assert "line 4: +1900 -> +1900" in out and "line 5: abc -> NOT READ (not a number)" in out
    assert run("show", str(conf.parent / "consent.txt"), "--limit", "2", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kind"] == "opposition" and shown["lines"][0] == {"line": 1, "text": "0612000009",
                                                                     "read": ["+33612000009"]}
    assert len(shown["lines"]) == 2


def test_show_reads_a_national_file_by_its_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12: an FTC or TPS file is shown the way it loads, by its country's plan, whatever the home country."""
    samples = Path(__file__).parent.parent / "registry" / "samples"
    capsys.readouterr()
    assert run("show", str(samples / "ftc-full.txt")) == 0
    out = capsys.readouterr().out
    assert "ftc-dnc" in out and "line 5: 212,5550123 -> +12125550123" in out
    assert "line 7: 212,555012 -> NOT READ (not a number)" in out
    assert run("show", str(samples / "tps-spaces.txt"), "--json") == 0
    assert json.loads(capsys.readouterr().out)["lines"][0] == {"line": 2, "text": "0207 9460123",
                                                              "read": ["+442079460123"]}
