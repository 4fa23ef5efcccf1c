"""The embedded store: counts, refusals and opt-outs, atomic cap, survives a restart, a full disk loses nothing."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.state.store import Cap, EmbeddedState, open_store

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
K = 33612000009


async def test_memory_store_counts_and_caps() -> None:
    s = EmbeddedState.from_url("memory://")
    cap = Cap(4, T0 - timedelta(days=30))
    for i in range(4):
        assert await s.record_attempt("acme", K, T0 + timedelta(minutes=i), cap)
    assert not await s.record_attempt("acme", K, T0 + timedelta(minutes=5), cap)
    assert len((await s.history("acme", K)).attempts) == 4
    assert (await s.history("other-professional", K)).attempts == ()
    await s.record_refusal("acme", K, T0)
    await s.record_optout("acme", K, T0)
    h = await s.history("acme", K)
    assert h.last_refusal == T0 and h.opted_out_at == T0


async def test_old_attempts_expire() -> None:
    s = EmbeddedState()
    assert await s.record_attempt("acme", K, T0 - timedelta(days=40))
    await s.record_attempt("acme", K, T0)
    assert (await s.history("acme", K)).attempts == (T0,)


async def test_sqlite_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    now = datetime.now(UTC)
    s = open_store(f"sqlite://{db}")
    await s.start()
    await s.record_attempt("acme", K, now)
    await s.record_refusal("acme", K, now)
    await s.record_optout("acme", K + 1, now)
    await s.close()
    again = EmbeddedState(db)
    h = again.history_now("acme", K)
    assert len(h.attempts) == 1 and h.last_refusal is not None
    assert again.history_now("acme", K + 1).opted_out_at is not None
    again.close_now()


def test_full_disk_keeps_rows_until_they_can_be_written(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    s = EmbeddedState(db)
    assert s._db is not None
    s.attempt_now("acme", K, T0)
    assert s.flush() == 1
    # make the database "full": no page may be added
    pages = s._db.execute("PRAGMA page_count").fetchone()[0]
    s._db.execute(f"PRAGMA max_page_count = {pages}")
    for i in range(2000):
        s.attempt_now("acme", K + i, T0)
    assert s.flush() == 0  # refused, kept
    assert len(s._pending) == 2000
    s._db.execute("PRAGMA max_page_count = 1073741823")
    assert s.flush() == 2000
    s.close_now()
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    assert rows == 2001


def test_unknown_url() -> None:
    with pytest.raises(ValueError, match="not an embedded state URL"):
        EmbeddedState.from_url("postgres://x")
