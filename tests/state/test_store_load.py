"""The embedded store's start (issue 17): the snapshot beside the SQLite file, the rows written after it, a
corrupt or foreign snapshot refused (SQLite read instead), and calls failing closed until the history is in place."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.service import Gateway
from gateway.state import snapshot
from gateway.state.model import Retention, StateLoading
from gateway.state.store import EmbeddedState
from tests.state.helpers import RETENTION

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
KEYS = [33_612_000_000 + 7919 * i for i in range(400)]


def clock() -> datetime:
    return T0 + timedelta(days=1)


def _fill(s: EmbeddedState, start: int = 0) -> None:
    for i, key in enumerate(KEYS):
        for j in range(1 + (i + start) % 4):
            s.attempt_now("acme", key, T0 - timedelta(days=j, seconds=start), None)
        if i % 9 == 0:
            s.refusal_now("acme", key, T0 - timedelta(hours=i + start))
        if i % 13 == 0:
            s.optout_now("acme", key, T0 - timedelta(minutes=i + start))
        if i % 17 == 0:  # a consent at a call (issue 13): kept like a refusal, the latest one
            s.consent_now("acme", key, T0 - timedelta(hours=2 * i + start))
            s.consent_now("acme", key, T0 - timedelta(hours=2 * i + start + 1))
    s.attempt_now("other", KEYS[0], T0)


def _histories(s: EmbeddedState) -> dict[tuple[str, int], object]:
    return {(p, k): s.history_now(p, k) for p in ("acme", "other") for k in KEYS}


def test_restart_reloads_the_same_history_from_the_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=RETENTION, clock=clock)
    _fill(s)
    want = _histories(s)
    consented = [k for k in KEYS if s.history_now("acme", k).consent_at is not None]
    assert len(consented) == 24 and s.attempt_count_now("acme", KEYS[17]) is None
    assert s.history_now("acme", KEYS[17]).consent_at == T0 - timedelta(hours=34)  # the latest of the two
    s.close_now()
    assert snapshot.path_for(db).exists()
    again = EmbeddedState(db, retention=RETENTION, clock=clock)
    assert again.loaded is not None and again.loaded.source == "snapshot" and again.loaded.rows == 0
    assert _histories(again) == want
    again.close_now()
    snapshot.path_for(db).unlink()  # the same from SQLite alone
    alone = EmbeddedState(db, retention=RETENTION, clock=clock)
    assert alone.loaded is not None and alone.loaded.source == "sqlite"
    assert _histories(alone) == want
    alone.close_now()


def test_rows_written_after_the_snapshot_are_replayed(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=RETENTION, clock=clock)
    _fill(s)
    s.close_now()
    s = EmbeddedState(db, retention=RETENTION, clock=clock)
    _fill(s, start=1)  # more attempts, later refusals, opt-outs that must not move
    want = _histories(s)
    assert s.flush() > 0
    assert s._db is not None
    s._db.close()  # a crash: written to SQLite, no snapshot at close
    s._db = None
    again = EmbeddedState(db, retention=RETENTION, clock=clock)
    assert again.loaded is not None and again.loaded.source == "snapshot" and again.loaded.rows > 0
    assert _histories(again) == want
    again.close_now()


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic"])
def test_a_corrupt_snapshot_is_refused_and_sqlite_read(tmp_path: Path, damage: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=RETENTION, clock=clock)
    _fill(s)
    want = _histories(s)
    s.close_now()
    path = snapshot.path_for(db)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-100] ^= 0x40
    elif damage == "truncate":
        del data[-9:]
    else:
        data[0] ^= 1
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="gateway.state.store"):
        again = EmbeddedState(db, retention=RETENTION, clock=clock)
    assert again.loaded is not None and again.loaded.source == "sqlite"
    assert "snapshot not used" in caplog.text
    assert _histories(again) == want
    again.close_now()


def test_a_snapshot_of_another_database_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b = tmp_path / "a" / "state.db", tmp_path / "b" / "state.db"
    for db, start in ((a, 0), (b, 2)):
        s = EmbeddedState(db, retention=RETENTION, clock=clock)
        _fill(s, start)
        s.close_now()
    snapshot.path_for(b).replace(snapshot.path_for(a))  # b's snapshot beside a's file
    want = EmbeddedState(a, retention=RETENTION, clock=clock, snapshot=False)
    with caplog.at_level(logging.WARNING, logger="gateway.state.store"):
        got = EmbeddedState(a, retention=RETENTION, clock=clock)
    assert got.loaded is not None and got.loaded.source == "sqlite" and "snapshot not used" in caplog.text
    assert _histories(got) == _histories(want)
    got.close_now()
    want.close_now()


def test_a_snapshot_taken_with_a_shorter_retention_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=RETENTION, clock=clock)
    _fill(s)
    s.close_now()
    longer = Retention(timedelta(days=61), timedelta(days=61))  # the snapshot may lack what SQLite still has
    again = EmbeddedState(db, retention=longer, clock=clock)
    assert again.loaded is not None and again.loaded.source == "sqlite"
    again.close_now()


def test_the_sweep_frees_what_no_window_needs(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    now = [T0]
    s = EmbeddedState(db, retention=RETENTION, clock=lambda: now[0])
    _fill(s)
    led = s._ledgers["acme"] if s._ledgers else None
    assert led is not None
    held = led.attempts.attempts()
    now[0] = T0 + timedelta(days=30, hours=12)  # 31 days back from then: only the attempts at T0 are kept
    while not s.sweep_step(64):
        pass
    assert 0 < led.attempts.attempts() < held
    assert all(h.attempts == () or min(h.attempts) >= T0 - timedelta(hours=12)
               for h in (s.history_now("acme", k) for k in KEYS))
    assert s.flush() > 0
    s._prune_db()
    assert s._db is not None
    oldest = s._db.execute("SELECT min(at) FROM attempts").fetchone()[0]
    assert oldest >= (now[0] - RETENTION.attempts).timestamp()
    s.close_now()


# -- fail closed while loading ---------------------------------------------------------------------------------------


class SlowLoad(EmbeddedState):
    """The store whose load waits until the test lets it go (a history of millions of attempts, in a test)."""

    gate: threading.Event

    def _read(self):  # type: ignore[no-untyped-def]
        assert self.gate.wait(10)
        return super()._read()


async def test_calls_fail_closed_until_the_history_is_loaded(tmp_path: Path, sample_config: Config) -> None:
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=RETENTION)
    now = datetime.now(UTC)
    for _ in range(4):  # the French cap (4 in 30 days) is reached: a call on an empty history would be allowed
        s.attempt_now(sample_config.gateway.professional, 33612000009, now - timedelta(days=1))
    s.close_now()
    # state_failure = "open" decides without history when Redis is down: never while loading
    config = replace(sample_config, gateway=replace(sample_config.gateway, state_failure="open"))
    slow = SlowLoad(db, retention=RETENTION, background_load=True)
    slow.gate = threading.Event()
    gw = Gateway(config, state=slow)
    gw.holder.load_all()
    await gw.start()
    assert not slow.healthy
    d = (await gw.check("0612000009", "prospect")).decision
    assert (d.verdict, d.reason) == ("BLOCK", "state_unavailable")
    assert "loading" in (d.detail or "")
    with pytest.raises(StateLoading):
        slow.history_now(sample_config.gateway.professional, 33612000009)
    await gw.optout("0612000105")  # recorded while loading: kept, applied once loaded
    assert (await gw.check("112", "prospect")).decision.verdict == "ALLOW"  # emergency numbers never wait
    slow.gate.set()
    for _ in range(500):
        if slow.healthy:
            break
        await asyncio.sleep(0.01)
    assert slow.healthy
    d = (await gw.check("0612000009", "prospect")).decision
    assert (d.verdict, d.reason) == ("BLOCK", "frequency_cap")  # decided on the loaded history
    assert (await gw.check("0612000105", "prospect")).decision.reason == "internal_dnc"
    await gw.close()
    again = EmbeddedState(db, retention=RETENTION)
    assert again.history_now(sample_config.gateway.professional, 33612000105).opted_out_at is not None
    again.close_now()


async def test_a_load_that_fails_keeps_calls_blocked(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    EmbeddedState(db, retention=RETENTION).close_now()
    s = EmbeddedState(db, retention=RETENTION, background_load=True)
    db.unlink()  # the read-only connection of the load cannot open it
    for f in tmp_path.glob("state.db-*"):
        f.unlink()
    await s.start()
    assert s._loader is not None
    await s._loader
    with pytest.raises(StateLoading, match="not loaded"):
        await s.history("acme", KEYS[0])
    assert not s.healthy
    await s.close()


def test_sqlite_rowids_are_never_reused(tmp_path: Path) -> None:
    """A prune never deletes a table's last row: "the rows after rowid N" stays what a snapshot at N lacks."""
    db = tmp_path / "state.db"
    s = EmbeddedState(db, retention=RETENTION, clock=lambda: T0)
    s.attempt_now("acme", KEYS[0], T0 - timedelta(days=60))
    s.flush()
    s._prune_db()
    s.close_now()
    assert sqlite3.connect(db).execute("SELECT count(*) FROM attempts").fetchone()[0] == 1
