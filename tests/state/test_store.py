"""The embedded store: counts, refusals and opt-outs, atomic cap, survives a restart, a full disk loses nothing."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.state.model import REFUSAL_FLOOR, Cap, Retention, StateLost
from gateway.state.store import EmbeddedState, open_store
from tests.state.helpers import RETENTION

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
K = 33612000009


async def test_memory_store_counts_and_caps() -> None:
    s = EmbeddedState.from_url("memory://", retention=RETENTION)
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
    s = EmbeddedState(retention=RETENTION)
    assert await s.record_attempt("acme", K, T0 - timedelta(days=40))
    await s.record_attempt("acme", K, T0)
    assert (await s.history("acme", K)).attempts == (T0,)


async def test_sqlite_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    now = datetime.now(UTC)
    s = open_store(f"sqlite://{db}", retention=RETENTION)
    await s.start()
    await s.record_attempt("acme", K, now)
    await s.record_refusal("acme", K, now)
    await s.record_optout("acme", K + 1, now)
    await s.close()
    again = EmbeddedState(db, retention=RETENTION)
    h = again.history_now("acme", K)
    assert len(h.attempts) == 1 and h.last_refusal is not None
    assert again.history_now("acme", K + 1).opted_out_at is not None
    again.close_now()


def test_full_disk_keeps_rows_until_they_can_be_written(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=RETENTION)
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
        EmbeddedState.from_url("postgres://x", retention=RETENTION)


# -- retention is data: a 60-day window keeps 60 days (issue 11) ---------------------------------------------------

SIXTY = Retention(attempts=timedelta(days=61), refusals=timedelta(days=60))


def test_a_60_day_window_counts_day_0_on_day_40() -> None:
    s = EmbeddedState(retention=SIXTY)

    def cap(at: datetime) -> Cap:  # window_days = 60, max_attempts = 2
        return Cap(2, at - timedelta(days=60))

    days = [T0 + timedelta(days=d) for d in (0, 35, 40)]
    assert [s.attempt_now("acme", K, at, cap(at)) for at in days] == [True, True, False]
    assert s.history_now("acme", K).attempts == tuple(days[:2])


def test_a_longer_retention_applies_before_anything_is_pruned() -> None:
    s = EmbeddedState(retention=Retention(timedelta(days=31), timedelta(days=60)))
    assert s.attempt_now("acme", K, T0)
    s.set_retention(SIXTY)  # a reload lengthened the window on day 20
    assert s.attempt_now("acme", K, T0 + timedelta(days=40))
    assert s.history_now("acme", K).attempts == (T0, T0 + timedelta(days=40))


async def test_sqlite_reload_uses_the_retention_it_is_given(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=SIXTY, clock=lambda: T0)
    s.attempt_now("acme", K, T0)
    s.refusal_now("acme", K, T0)
    s.close_now()
    day_40 = T0 + timedelta(days=40)
    # A gateway started every few days up to day 40: the clock is believed as it goes (gateway/clockguard.py).
    for day in range(6, 41, 6):
        EmbeddedState(db, retention=SIXTY, clock=lambda d=day: T0 + timedelta(days=d)).close_now()  # type: ignore[misc]
    again = EmbeddedState(db, retention=SIXTY, clock=lambda: day_40)
    assert again.history_now("acme", K).attempts == (T0,)
    again.close_now()
    # The same file read with a month's retention drops them (so the 60 days above are the retention's doing).
    shorter = EmbeddedState(db, retention=Retention(timedelta(days=31), timedelta(days=60)), clock=lambda: day_40)
    h = shorter.history_now("acme", K)
    assert h.attempts == () and h.last_refusal == T0  # refusals: never under the 3-year floor
    shorter.close_now()


async def test_refusals_older_than_the_floor_are_dropped_at_load(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=SIXTY, clock=lambda: T0)
    s.refusal_now("acme", K, T0)
    s.close_now()
    later = T0 + REFUSAL_FLOOR + timedelta(days=1)
    # Three years later by the clock alone, nothing is dropped: the clock may have jumped (see the clock tests).
    first = EmbeddedState(db, retention=SIXTY, clock=lambda: later)
    assert first.history_now("acme", K).last_refusal == T0
    first.close_now()
    # A gateway started every week for three years: the clock is believed as it goes.
    for week in range(1, (later - T0).days // 7 + 2):
        at = min(later, T0 + timedelta(days=7 * week))
        EmbeddedState(db, retention=SIXTY, clock=lambda at=at: at).close_now()  # type: ignore[misc]
    again = EmbeddedState(db, retention=SIXTY, clock=lambda: later)
    assert again.history_now("acme", K).last_refusal is None
    again.close_now()


def test_open_store_passes_the_retention(tmp_path: Path) -> None:
    s = open_store(f"sqlite://{tmp_path / 'state.db'}", retention=SIXTY)
    assert isinstance(s, EmbeddedState) and s.retention == SIXTY
    s.close_now()
    assert isinstance(m := open_store("memory://", retention=SIXTY), EmbeddedState) and m.retention == SIXTY


def test_retention_keeps_refusals_at_least_three_years() -> None:
    assert Retention(timedelta(days=31), timedelta(days=60)).kept_refusals == REFUSAL_FLOOR
    assert Retention(timedelta(days=31), timedelta(days=5000)).kept_refusals == timedelta(days=5000)
    with pytest.raises(ValueError, match="positive"):
        Retention(timedelta(0), timedelta(days=1))


@pytest.mark.parametrize("job", ["_flush", "_prune_locked"])
def test_close_waits_for_a_flush_or_prune_left_running_in_a_thread(tmp_path: Path, job: str) -> None:
    """The flusher is cancelled at close, but an executor thread it started goes on: the connection is closed only
    once that thread's statement is done (closing it under a running statement crashed the interpreter), and a
    job that reaches the lock after the close finds no connection and does nothing."""
    s = EmbeddedState(tmp_path / "state.db", retention=RETENTION)
    s.attempt_now("acme", K, T0)
    inside, release = threading.Event(), threading.Event()
    real = getattr(s, job)

    def held(*args: object) -> object:
        inside.set()
        assert release.wait(10)
        return real(*args)

    setattr(s, job, held)
    worker = threading.Thread(target=s.flush if job == "_flush" else s._prune_db)
    worker.start()
    assert inside.wait(10)
    closer = threading.Thread(target=s.close_now)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close_now closed the connection under a running flush or prune"
    release.set()
    worker.join(10)
    closer.join(10)
    assert not closer.is_alive() and s._db is None
    assert s.flush() == 0
    s._prune_db()  # after the close: nothing to do, no error
    again = EmbeddedState(tmp_path / "state.db", retention=RETENTION)
    assert len(again.history_now("acme", K).attempts) == 1
    again.close_now()


def test_state_db_deleted_while_serving_is_written_back_and_nothing_is_lost(tmp_path: Path) -> None:
    """state.db deleted under a running gateway: the next write puts it back from the open connection (which
    holds every row), so a restart finds every attempt, the ones counted before the deletion and after."""
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=RETENTION)
    s.attempt_now("acme", K, T0)
    assert s.flush() == 1
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    s.attempt_now("acme", K, T0 + timedelta(minutes=1))
    assert s.flush() == 1
    assert db.exists() and (db.stat().st_mode & 0o777) == 0o600
    assert not s.lost
    s.close_now()
    again = EmbeddedState(db, retention=RETENTION)
    assert len(again.history_now("acme", K).attempts) == 2
    again.close_now()


def test_state_db_replaced_while_serving_is_a_lost_store(tmp_path: Path) -> None:
    """Another file put in state.db's place is never written to: the store is lost (calls fail closed until
    `state rebuild`), and the rows it could not write stay pending, not dropped."""
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=RETENTION)
    s.attempt_now("acme", K, T0)
    assert s.flush() == 1
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    other.replace(db)
    s.attempt_now("acme", K, T0 + timedelta(minutes=1))
    assert s.flush() == 0
    assert "replaced" in s.lost and s.lost_count == 1 and s._pending
    with pytest.raises(StateLost):
        s.history_now("acme", K)
    s.close_now()
