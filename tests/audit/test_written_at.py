"""Issue 15 #11: every audit row says when it was written (``written_at``) besides when the call was decided
(``at``), and hashes it; databases written before the column existed are upgraded and keep verifying."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.audit import (
    CHAIN_SCHEME,
    AuditError,
    AuditLog,
    AuditReader,
    open_writer,
)
from gateway.audit.reader import read_meta
from gateway.config import AuditSection
from tests.audit.helpers import T0, db, old_database, rec, verification

WRITTEN = T0 + 7.5  # the writer's injected wall clock


async def started_at(path: Path, now: float) -> AuditLog:
    log = AuditLog(path, AuditSection(group_commit_ms=1.0), clock=lambda: now)
    await log.start()
    return log


async def test_each_row_records_when_it_was_written(tmp_path: Path) -> None:
    log = await started_at(tmp_path / "a.db", WRITTEN)
    try:
        await log.append(rec(1, at=T0 + 7 * 86400), durable=True)  # decided "next week", written now
        [row] = log.query()
    finally:
        await log.close()
    assert row["at"] == T0 + 7 * 86400 and row["time"] == "2026-12-01T09:30:00.000Z"
    assert row["written_at"] == WRITTEN and row["written_time"] == "2026-11-24T09:30:07.500Z"
    assert verification(tmp_path / "a.db").ok


@pytest.fixture
async def written(tmp_path: Path) -> Path:
    log = await started_at(tmp_path / "a.db", WRITTEN)
    for i in range(1, 5):
        await log.append(rec(i), durable=i == 4)
    await log.close()
    return tmp_path / "a.db"


# Nulled (passed off as a row from before the column), nudged, or made to match the decision time.
@pytest.mark.parametrize("change", ["written_at = NULL", "written_at = written_at + 0.001", "written_at = at"])
def test_a_changed_or_removed_written_at_is_detected(written: Path, change: str) -> None:
    assert verification(written).ok
    db(written).execute(f"UPDATE audit SET {change} WHERE seq = 3")
    v = verification(written)
    assert not v.ok and v.bad_seq == 3 and "modified" in v.problem


def test_an_old_database_verifies_before_and_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    rows = old_database(path, 6)
    # Read-only, before any writer upgraded it: the rows read with written_at None, the chain intact.
    with AuditReader(path) as r:
        assert r.verify().ok
        assert [d["written_at"] for d in r.query()] == [None] * 6
        assert r.query()[0]["written_time"] is None
    conn = open_writer(path)
    meta = read_meta(conn)
    conn.close()
    assert (meta["chain"], meta["schema"]) == (CHAIN_SCHEME, "2")
    v = verification(path)
    assert v.ok and v.records == 6 and v.head_hash == rows[-1][-1]  # nothing rewritten


async def test_rows_appended_after_the_upgrade_carry_written_at_and_the_chain_holds(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_database(path, 5)
    log = await started_at(path, WRITTEN)
    try:
        for i in range(6, 9):
            await log.append(rec(i), durable=True)
    finally:
        await log.close()
    v = verification(path)
    assert v.ok and v.records == 8, v.message
    with AuditReader(path) as r:
        assert [d["written_at"] for d in r.query()] == [None] * 5 + [WRITTEN] * 3
    # A reopened writer (no second ALTER) carries on the same chain.
    log = await started_at(path, WRITTEN + 1)
    await log.append(rec(9), durable=True)
    await log.close()
    assert verification(path).ok
    # Tampering with an upgraded row's written_at is detected too.
    db(path).execute("UPDATE audit SET written_at = NULL WHERE seq = 7")
    assert verification(path).bad_seq == 7


def test_two_writers_opening_an_old_database_upgrade_it_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_database(path, 2)
    first, second = open_writer(path), open_writer(path)
    first.close()
    second.close()
    assert [r[1] for r in db(path).execute("PRAGMA table_info(audit)")].count("written_at") == 1


def test_an_unknown_chain_scheme_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    old_database(path, 2)
    db(path).execute("UPDATE meta SET value = 'sha256-json-v9' WHERE key = 'chain'")
    with pytest.raises(AuditError, match="sha256-json-v9"):
        open_writer(path)
    assert "written_at" not in [r[1] for r in db(path).execute("PRAGMA table_info(audit)")]
    with pytest.raises(sqlite3.OperationalError):  # still exactly the old table
        db(path).execute("SELECT written_at FROM audit")
