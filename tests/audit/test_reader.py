"""Reading an audit database: refused when it is not one; tampering found by ``verify``."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.audit import AuditError, AuditReader, chain_hash
from tests.audit.helpers import db, rec, started, verification


def test_reader_refuses_missing_and_foreign_databases(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="no such"):
        AuditReader(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()
    other = tmp_path / "other.db"
    db(other).execute("CREATE TABLE t (x)")
    with pytest.raises(AuditError, match="not an audit database"):
        AuditReader(other)


# -- hash chain and tampering ---------------------------------------------------------------------

@pytest.fixture
async def filled(tmp_path: Path) -> Path:
    log = await started(tmp_path / "a.db")
    for i in range(1, 11):
        await log.append(rec(i), durable=i == 10)
    await log.close()
    return tmp_path / "a.db"


def test_intact_chain_verifies(filled: Path) -> None:
    v = verification(filled)
    assert v.ok and v.records == 10 and "intact" in v.message and v.head_hash in v.message


def test_modified_record_is_detected(filled: Path) -> None:
    db(filled).execute("UPDATE audit SET verdict = 'ALLOW', number = '+33699999999' WHERE seq = 4")
    v = verification(filled)
    assert not v.ok and v.bad_seq == 4 and "modified" in v.problem and "seq 4" in v.message


def test_modified_time_is_detected(filled: Path) -> None:
    db(filled).execute("UPDATE audit SET at = at + 0.001 WHERE seq = 2")
    assert verification(filled).bad_seq == 2


def test_rehashed_record_is_detected_by_the_next_one(filled: Path) -> None:
    c = db(filled)
    row = list(c.execute("SELECT * FROM audit WHERE seq = 5").fetchone())
    row[4] = "+33699999999"  # number
    new_hash = chain_hash(row[-2], 5, row[1:-2])
    c.execute("UPDATE audit SET number = ?, hash = ? WHERE seq = 5", (row[4], new_hash))
    v = verification(filled)
    assert not v.ok and v.bad_seq == 6 and "does not follow" in v.problem


def test_removed_middle_record_is_detected(filled: Path) -> None:
    db(filled).execute("DELETE FROM audit WHERE seq = 5")
    v = verification(filled)
    assert not v.ok and v.bad_seq == 5 and "removed" in v.problem


def test_swapped_records_are_detected(filled: Path) -> None:
    c = db(filled)
    c.execute("BEGIN")
    c.execute("UPDATE audit SET seq = -3 WHERE seq = 3")
    c.execute("UPDATE audit SET seq = 3 WHERE seq = 7")
    c.execute("UPDATE audit SET seq = 7 WHERE seq = -3")
    c.execute("COMMIT")
    v = verification(filled)
    assert not v.ok and v.bad_seq == 3


def test_truncated_tail_is_detected(filled: Path) -> None:
    db(filled).execute("DELETE FROM audit WHERE seq >= 9")
    v = verification(filled)
    assert not v.ok and v.bad_seq == 9 and "from the end" in v.problem


def test_removed_head_is_detected(filled: Path) -> None:
    db(filled).execute("DELETE FROM audit WHERE seq <= 2")
    v = verification(filled)
    assert not v.ok and v.bad_seq == 1


def test_forged_head_is_detected(filled: Path) -> None:
    db(filled).execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", ("f" * 64,))
    assert verification(filled).bad_seq == 10
