"""``dnc-gateway audit verify | query | export`` through the real entry point, on a real audit database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import stat
from pathlib import Path

import pytest

from gateway.audit import AuditLog, AuditRecord
from gateway.cli import main
from gateway.config import AuditSection
from tests.conftest import FIXED_NOW, SAMPLE_TOML, write_sample

T0 = FIXED_NOW.timestamp()  # 2026-11-24T09:30:00Z = 10:30 in Paris
WRITTEN = T0 + 100_000  # the writer's clock when it wrote them all: 2026-11-25T13:16:40Z


def rec(i: int, number: str, campaign: str, verdict: str, at: float) -> AuditRecord:
    return AuditRecord(f"id{i:04d}", at, campaign, number, verdict, None if verdict == "ALLOW" else "opposition_list",
                       "allow" if verdict == "ALLOW" else "opposition_list", False, "enforce", "opposition",
                       {"bloctel": "2026-11-20"}, "0162000000", f"PJSIP/agent-{i}", f"17.{i}", "agi", "")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The sample config with an audit database holding 6 decisions, one hour apart from FIXED_NOW."""
    root = tmp_path / "conf"
    path = write_sample(root)
    path.write_text(SAMPLE_TOML.replace('state = "memory://"', 'state = "memory://"\naudit = "audit.db"'))
    records = [rec(0, "+33612000007", "prospect", "ALLOW", T0), rec(1, "+33612000001", "legacy", "BLOCK", T0 + 3600),
               rec(2, "+33612000007", "legacy", "ALLOW", T0 + 7200), rec(3, "+33612000008", "prospect", "ALLOW",
                                                                         T0 + 86400),
               rec(4, "+262692000009", "prospect", "ALLOW", T0 + 90000), rec(5, "17", "survey", "ALLOW", T0 + 90001)]

    async def fill() -> None:
        log = AuditLog(root / "audit.db", AuditSection(), clock=lambda: WRITTEN)
        await log.start()
        for r in records:
            await log.append(r, durable=False)
        await log.close()

    asyncio.run(fill())
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_intact_then_tampered(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--config", str(config), "audit", "verify")
    assert code == 0 and "intact: 6 records" in out
    with sqlite3.connect(config.parent / "audit.db") as c:
        c.execute("UPDATE audit SET verdict = 'ALLOW' WHERE seq = 2")
    code, out, err = run(capsys, "--config", str(config), "audit", "verify")
    assert code == 1 and "BROKEN at seq 2" in err and "modified" in err


def test_verify_detects_deletion_and_reorder(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = config.parent / "audit.db"
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM audit WHERE seq = 3")
    code, _, err = run(capsys, "audit", "verify", "--db", str(db))
    assert code == 1 and "seq 3" in err and "removed" in err


def test_query_by_number_in_any_spelling(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for spelling in ("0612000007", "+33 6 12 00 00 07", "0033612000007"):
        code, out, err = run(capsys, "--config", str(config), "audit", "query", "--number", spelling)
        assert code == 0, err
        lines = out.splitlines()
        assert len(lines) == 2 and all("+33612000007" in line for line in lines), out
        assert "id0000" in lines[0] and "id0002" in lines[1] and "2 record(s)" in err
    code, out, _ = run(capsys, "--config", str(config), "audit", "query", "--number", "0692000009")
    assert "+262692000009" in out  # an overseas department dialled nationally


def test_query_by_campaign_and_time_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--config", str(config), "audit", "query", "--format", "json"]
    code, out, _ = run(capsys, *base, "--campaign", "legacy")
    assert code == 0 and [d["decision_id"] for d in json.loads(out)] == ["id0001", "id0002"]
    got = json.loads(out)[0]
    assert (got["verdict"], got["reason"], got["lists"]) == ("BLOCK", "opposition_list", {"bloctel": "2026-11-20"})
    # 11:30 Paris (offset given) .. 2026-11-25 (a bare date, midnight in the config's time zone, Europe/Paris)
    _, out, _ = run(capsys, *base, "--since", "2026-11-24T11:30:00+01:00", "--until", "2026-11-25")
    assert [d["decision_id"] for d in json.loads(out)] == ["id0001", "id0002"]
    _, out, _ = run(capsys, *base, "--since", "2026-11-25T10:30:00", "--campaign", "prospect")  # naive: Paris
    assert [d["decision_id"] for d in json.loads(out)] == ["id0003", "id0004"]
    _, out, _ = run(capsys, *base, "--since", str(int(T0 + 90000)), "--until", "2026-11-25T10:30:00.5Z")
    assert [d["decision_id"] for d in json.loads(out)] == ["id0004"]
    _, out, _ = run(capsys, *base, "--number", "17")
    assert [d["decision_id"] for d in json.loads(out)] == ["id0005"]


def test_query_limit(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--config", str(config), "audit", "query", "--limit", "2")
    assert code == 0 and len(out.splitlines()) == 2 and "limit reached" in err


def test_export_csv_to_stdout(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--config", str(config), "audit", "export", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["decision_id"] for r in rows] == [f"id{i:04d}" for i in range(6)]
    assert rows[1]["verdict"] == "BLOCK" and rows[1]["reason"] == "opposition_list" and rows[0]["reason"] == ""
    assert rows[0]["time"] == "2026-11-24T09:30:00.000Z" and json.loads(rows[0]["lists"]) == {"bloctel": "2026-11-20"}
    assert rows[0]["channel"] == "PJSIP/agent-0" and rows[0]["uniqueid"] == "17.0" and len(rows[0]["hash"]) == 64


def test_query_and_export_say_when_each_record_was_written(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 15 #11: the decision time alone let a record dated next week pass for a call made then."""
    base = ["--config", str(config), "audit"]
    _, out, _ = run(capsys, *base, "query", "--number", "0612000001")
    assert "2026-11-24T10:30:00.000Z" in out and "written=2026-11-25T13:16:40.000Z" in out
    _, out, _ = run(capsys, *base, "query", "--format", "json", "--limit", "1")
    got = json.loads(out)[0]
    assert (got["at"], got["written_at"], got["written_time"]) == (T0, WRITTEN, "2026-11-25T13:16:40.000Z")
    _, out, _ = run(capsys, *base, "export", "--format", "csv")
    header, first = next(csv.reader(io.StringIO(out))), next(csv.DictReader(io.StringIO(out)))
    assert header[-2:] == ["written_at", "written_time"] and header[:3] == ["seq", "decision_id", "time"]
    assert (float(first["written_at"]), first["written_time"]) == (WRITTEN, "2026-11-25T13:16:40.000Z")
    _, out, _ = run(capsys, *base, "export", "--format", "jsonl")
    assert {json.loads(line)["written_at"] for line in out.splitlines()} == {WRITTEN}


def test_export_jsonl_to_private_file_with_filters(config: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "export.jsonl"
    code, out, err = run(capsys, "--config", str(config), "audit", "export", "--format", "jsonl", "-o", str(out_file),
                         "--campaign", "prospect")
    assert code == 0 and out == "" and "3 record(s)" in err
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [d["decision_id"] for d in lines] == ["id0000", "id0003", "id0004"]
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(("args", "message"), [
    (["query", "--since", "yesterday"], "--since 'yesterday': not a time"),
    (["query", "--until", "2026-13-45"], "--until '2026-13-45': not a time"),
    (["query", "--since", "2026-11-25", "--until", "2026-11-24"], "is not after --since"),
    (["query", "--limit", "0"], "--limit 0"),
    (["verify", "--db", "missing.db"], "missing.db: no such audit database"),
    (["export", "--db", "missing.db"], "no such audit database"),
])
def test_bad_input_exits_2(config: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = run(capsys, "--config", str(config), "audit", *args)
    assert code == 2 and message in err and out == ""
    assert not (Path.cwd() / "missing.db").exists()


def test_config_without_audit_needs_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_sample(tmp_path / "plain")
    code, _, err = run(capsys, "--config", str(path), "audit", "verify")
    assert code == 2 and "no audit database" in err and "--db" in err


def test_not_an_audit_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE x (y)")
    code, _, err = run(capsys, "audit", "verify", "--db", str(other))
    assert code == 2 and "not an audit database" in err
