"""The state store interface and its embedded backend (memory, optionally persisted to SQLite).

The embedded store keeps everything in memory (reads on the hot path are dict
look-ups) and writes through to SQLite in small batches, so that counts and
refusals survive a restart. Several gateways share state through the Redis
backend (``gateway/state/redis_store.py``) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from array import array
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol, cast

from pyroaring import BitMap64

from gateway.aio import cancel
from gateway.clockguard import ClockGuard
from gateway.private import private_file, restrict
from gateway.sqlitefile import Identity, identity, restore_deleted
from gateway.state import packed
from gateway.state import snapshot as snapshot_mod
from gateway.state.model import (
    EMPTY_HISTORY,
    REDIS_DEFAULTS,
    Cap,
    History,
    RedisSettings,
    Retention,
    StateLoading,
    StateLost,
    StateUnavailable,
)

log = logging.getLogger(__name__)


class StateStore(Protocol):
    async def history(self, professional: str, key: int) -> History: ...

    async def histories(self, professional: str, keys: Sequence[int]) -> dict[int, History]:
        """The non-empty histories among ``keys``, in as few round trips as it takes (a scrub's block)."""
        ...

    def known_keys(self, professional: str) -> Collection[int] | None:
        """Every number with a history, when the store can list them cheaply (None: ask by number)."""
        ...

    async def record_attempt(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool:
        """Count a call attempt; with ``cap``, refuse (False) when the cap is already reached."""
        ...

    async def record_refusal(self, professional: str, key: int, at: datetime) -> None:
        """A refusal, on disk (or in the shared store) when this returns: the caller acknowledges it next."""
        ...

    async def record_optout(self, professional: str, key: int, at: datetime) -> None:
        """An opt-out, on disk (or in the shared store) when this returns."""
        ...

    async def record_consent(self, professional: str, key: int, at: datetime) -> None:
        """A consent given at ``at`` (a call, the API): the latest one is kept, and a later refusal ends it. On
        disk (or in the shared store) when this returns."""
        ...

    def set_retention(self, retention: Retention) -> None:
        """Keep history this long from now on (after a reload changed the campaigns' windows)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (professional TEXT NOT NULL, number INTEGER NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_by_number ON attempts (professional, number, at);
CREATE TABLE IF NOT EXISTS refusals (professional TEXT NOT NULL, number INTEGER NOT NULL, at REAL NOT NULL,
                                     PRIMARY KEY (professional, number));
CREATE TABLE IF NOT EXISTS optouts (professional TEXT NOT NULL, number INTEGER NOT NULL, at REAL NOT NULL,
                                    PRIMARY KEY (professional, number));
CREATE TABLE IF NOT EXISTS consents (professional TEXT NOT NULL, number INTEGER NOT NULL, at REAL NOT NULL,
                                     PRIMARY KEY (professional, number));
CREATE TABLE IF NOT EXISTS marker (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_TABLES = ("attempts", "refusals", "optouts", "consents")
# Refusals and consents: the latest one counts, kept as long as refusals (Retention.kept_refusals).
_LATEST = frozenset({"refusals", "consents"})
# A row's instant as packed.stamp_of_ts computes it (seconds since packed.EPOCH, rounded up), computed by SQLite:
# a bulk load then converts nothing per row in Python.
_E = f"(at - {int(packed.EPOCH.timestamp())})"
_STAMP_SQL = f"max(0, CAST({_E} AS INTEGER) + ({_E} > CAST({_E} AS INTEGER)))"
# Written rows get explicit, increasing rowids (the store's sequence), and a prune never deletes a table's last
# row: so a rowid is never reused, and "the rows after rowid N" is exactly what a snapshot taken at N lacks.
_PRUNE = "DELETE FROM {table} WHERE at < ? AND rowid < (SELECT max(rowid) FROM {table})"
SNAPSHOT_MIN_ROWS = 100_000  # a load that had to read more rows than this from SQLite writes a fresh snapshot
SWEEP_SHARDS = 256  # shards pruned per flusher tick (a few ms at 10 million numbers), one pass an hour
SWEEP_EVERY = 3600.0
_BATCH = 65_536  # rows per fetch of a bulk load, between two checks that the store is not closing


def _tails(db: sqlite3.Connection) -> dict[str, list[Any] | None]:
    """Each table's last row ([rowid, number, at]), or None for an empty table."""
    found: dict[str, list[Any] | None] = {}
    for t in _TABLES:
        row = db.execute(f"SELECT rowid, number, at FROM {t} ORDER BY rowid DESC LIMIT 1").fetchone()
        found[t] = list(row) if row else None
    return found


def _ts(t: datetime) -> float:
    return t.timestamp()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Loaded:
    """What a load read: the ledgers, how (for the log), and whether the snapshot should be rewritten."""

    ledgers: dict[str, packed.Ledger]
    latest: int  # stamp of the load's "now": the attempts' horizon is counted back from it
    source: str
    rows: int  # rows read from SQLite
    tails: dict[str, list[Any] | None]  # each table's last row when it was read: what a snapshot of it covers
    seconds: float = 0.0
    stale: bool = False


class EmbeddedState:
    """Call history in memory, packed (``gateway/state/packed.py``), with write-through to SQLite (``path``) or
    none (``memory://``).

    Start-up: with ``background_load`` the history is read in a thread once :meth:`start` runs (the snapshot
    beside the database, ``<path>.packed``, then the SQLite rows after it; or the whole SQLite file when there
    is no usable snapshot), and until it is in place every read raises :class:`StateLoading`: the gateway
    answers ``state_unavailable``, never a decision on an empty history. Without it (commands, tests) the
    constructor reads it before returning. Refusals and opt-outs recorded while loading are kept and applied
    once it is loaded. At close (and after a load that read many rows from SQLite) the snapshot is rewritten.
    """

    @property
    def immediate(self) -> bool:
        """Its coroutines never wait, so the Gateway calls the ``*_now`` methods instead (no task per call).

        False for a subclass that overrides the coroutines (a test double that fails or waits).
        """
        cls = type(self)
        return cls.history is EmbeddedState.history and cls.record_attempt is EmbeddedState.record_attempt

    def __init__(self, path: Path | None = None, *, retention: Retention,
                 flush_interval: float = 0.05, clock: Callable[[], datetime] = _utc_now,
                 background_load: bool = False, snapshot: bool = True) -> None:
        self.path = path
        self.retention = retention
        self._ret_s = int(retention.attempts.total_seconds())
        self._clock = clock  # for what is pruned at load and by the sweeps; writes carry their own time
        self._ledgers: dict[str, packed.Ledger] | None = {}  # None while loading
        self._latest = 0  # the latest instant seen (a write, or the clock at load): horizons count back from it
        self._r_horizon = 0  # refusals before it have expired
        self._pending: list[tuple[str, tuple[int, str, int, float]]] = []
        self._pending_error = ""  # why the last flush failed ("" when it worked)
        self._lock = threading.Lock()
        self._flush_interval = flush_interval
        self._task: asyncio.Task[None] | None = None
        self._loader: asyncio.Task[None] | None = None
        self._in_thread: asyncio.Future[Any] | None = None  # the flusher's work in a thread, which close() waits for
        self._loading_since = time.monotonic()
        self._load_error = ""
        self._closing = False
        self._early: list[tuple[str, str, int, datetime]] = []  # refusals/opt-outs recorded while loading
        self._seq = 0  # the last rowid given to a written row
        self._unsnapshotted = 0  # rows written since the snapshot on disk was taken
        self._sweep_at = 0  # the next shard a sweep prunes
        self._sweep_due = 0.0  # monotonic time of the next sweep and SQLite prune
        self._plausible = 0  # a stamp no later than the clock guard's bound (0: recompute at the next write)
        self.loaded: _Loaded | None = None  # how the history was loaded (for logs, the bench and tests)
        self.snapshot_path = snapshot_mod.path_for(path) if path is not None and snapshot else None
        self._db: sqlite3.Connection | None = None
        self._ident: Identity | None = None  # the file opened at ``path``: one deleted or replaced is noticed
        self._flush_lock = threading.Lock()  # one flush at a time (the flusher's, or a durable write's)
        self.lost = ""  # why the store is not the one the gateway wrote (gateway.state.marker), "" while it is
        self.lost_count = 0  # times it was found lost (dnc_state_lost_total)
        self.expected_marker: str | None = None
        # Prunes count their horizon from the plausible now (gateway/clockguard.py), never from a clock that jumped.
        self._guard = ClockGuard(None, clock=lambda: self._clock().timestamp())
        if path is not None:
            private_file(path)  # numbers: 0600 whatever the umask (the -wal and -shm files take its mode)
            self._db = _connect(path)
            self._ident = identity(path)
            restrict(path)
            newest = [t[2] for t in _tails(self._db).values() if t is not None]
            row = self._db.execute("SELECT value FROM marker WHERE key = 'trusted_at'").fetchone()
            trusted = float(row[0]) if row else max(newest) if newest else None
            self._guard = ClockGuard(trusted, clock=lambda: self._clock().timestamp())
            self._seq = max(self._db.execute(f"SELECT coalesce(max(rowid), 0) FROM {t}").fetchone()[0]
                            for t in _TABLES)
            self._ledgers = None
            if not background_load:
                loaded = self._read()
                self._install(loaded)
                self._prune_db()
                if loaded.stale:
                    self._write_snapshot(snapshot_mod.flat(loaded.ledgers), loaded.tails)

    @classmethod
    def from_url(cls, url: str, *, retention: Retention, background_load: bool = False) -> EmbeddedState:
        if url.startswith("memory://"):
            return cls(None, retention=retention)
        if url.startswith("sqlite://"):
            return cls(Path(url.removeprefix("sqlite://")), retention=retention, background_load=background_load)
        raise ValueError(f"not an embedded state URL: {url!r}")

    def set_retention(self, retention: Retention) -> None:
        # Pruning reads self.retention at each write, so a longer retention applies from the next call on:
        # nothing still in memory is dropped under the old, shorter horizon. (What a shorter one dropped is gone.)
        self.retention = retention
        self._ret_s = int(retention.attempts.total_seconds())

    @property
    def healthy(self) -> bool:
        """False while the history is loading (``/healthz`` and ``dnc_state_up`` say so)."""
        return self._ledgers is not None

    @property
    def last_error(self) -> str:
        return self.lost or self._load_error or ("" if self._ledgers is not None else "call history loading")

    # -- loading -----------------------------------------------------------------------------------

    def _read(self) -> _Loaded:
        """Read the history (in the loader thread, or the constructor): snapshot + later rows, or SQLite alone."""
        assert self.path is not None
        started = time.perf_counter()
        now = self._now()
        latest = packed.stamp(now)
        horizon = latest - self._ret_s
        r_horizon = packed.stamp(now - self.retention.kept_refusals)
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        try:
            db.execute("BEGIN")  # one read transaction: the rows and the tails are of one state of the file
            tails = _tails(db)
            found = self._from_snapshot(db, horizon)
            ledgers, after, source = found if found is not None else ({}, dict.fromkeys(_TABLES, 0), "sqlite")
            rows = 0

            def ledger(prof: str) -> packed.Ledger:
                led = ledgers.get(prof)
                if led is None:
                    led = ledgers[prof] = packed.Ledger()
                return led

            if found is None:  # everything from SQLite: in key order, built without a bisection
                cur = db.execute(f"SELECT professional, number, {_STAMP_SQL} FROM attempts WHERE at >= ? "
                                 "ORDER BY professional, number, at", (packed.instant(horizon).timestamp(),))
                builders: dict[str, packed.RunsBuilder] = {}
                # about how many rows (sizes the shards): from the rowids, without counting 30 million rows
                estimate = db.execute("SELECT coalesce(max(rowid) - min(rowid) + 1, 0) FROM attempts").fetchone()[0]
                while batch := cur.fetchmany(_BATCH):
                    if self._closing:
                        raise StateUnavailable("closed while loading")
                    rows += len(batch)
                    for prof, group in groupby(batch, itemgetter(0)):
                        b = builders.get(prof)
                        if b is None:
                            b = builders[prof] = packed.RunsBuilder(estimate)
                        b.extend((k, t) for _, k, t in group)
                for prof, b in builders.items():
                    ledger(prof).attempts = b.done()
            else:  # the rows after the snapshot, in the order they were written
                cur = db.execute(f"SELECT professional, number, {_STAMP_SQL} FROM attempts WHERE rowid > ? "
                                 "AND at >= ? ORDER BY rowid", (after["attempts"], packed.instant(horizon).timestamp()))
                while batch := cur.fetchmany(_BATCH):
                    if self._closing:
                        raise StateUnavailable("closed while loading")
                    rows += len(batch)
                    for prof, k, t in batch:
                        ledger(prof).attempts.add(k, t, horizon)
            for table, later in (("refusals", True), ("optouts", False), ("consents", True)):
                cur = db.execute(f"SELECT professional, number, {_STAMP_SQL} FROM {table} WHERE rowid > ?",
                                 (after[table],))
                for prof, k, t in cur:
                    rows += 1
                    if not later or t >= r_horizon:
                        getattr(ledger(prof), table).put(k, t, later=later)
        finally:
            db.close()
        return _Loaded(ledgers, latest, source, rows, tails, time.perf_counter() - started,
                       stale=rows > SNAPSHOT_MIN_ROWS or (found is None and bool(ledgers)))

    def _from_snapshot(self, db: sqlite3.Connection,
                       horizon: int) -> tuple[dict[str, packed.Ledger], dict[str, int], str] | None:
        """The snapshot's ledgers and the rowids it covers, if it is there and fits this database (else None,
        saying why: the caller reads SQLite instead)."""
        path = self.snapshot_path
        if path is None or not path.exists():
            return None
        try:
            header, ledgers = snapshot_mod.read(path)
            if header.get("retention_attempts", 0) < self._ret_s or \
                    header.get("retention_refusals", 0) < self.retention.kept_refusals.total_seconds():
                raise snapshot_mod.SnapshotError(f"{path}: taken with a shorter retention than today's")
            after = {}
            for table in _TABLES:
                tail = header["tails"][table]  # [rowid, number, at] of the table's last row, or None
                after[table] = self._check_tail(db, table, tail, horizon, path)
        except (snapshot_mod.SnapshotError, KeyError, TypeError, ValueError) as e:
            log.warning("state: snapshot not used, reading the whole history from SQLite: %s", e)
            return None
        return ledgers, after, "snapshot"

    @staticmethod
    def _check_tail(db: sqlite3.Connection, table: str, tail: list[Any] | None, horizon: int, path: Path) -> int:
        if tail is None:
            return 0
        rowid, number, at = int(tail[0]), int(tail[1]), float(tail[2])
        top = db.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0]
        if top < rowid:
            raise snapshot_mod.SnapshotError(f"{path}: covers {table} up to row {rowid}, the database ends at {top}")
        row = db.execute(f"SELECT number, at FROM {table} WHERE rowid = ?", (rowid,)).fetchone()
        if row is None:
            # Gone since: an attempt pruned, a refusal replaced by a later one. Anything else: another database.
            if table == "attempts" and packed.stamp_of_ts(at) >= horizon:
                raise snapshot_mod.SnapshotError(f"{path}: row {rowid} of {table} is not in the database")
        elif (row[0], row[1]) != (number, at):
            raise snapshot_mod.SnapshotError(f"{path}: row {rowid} of {table} differs: not this database's snapshot")
        return rowid

    def _install(self, loaded: _Loaded) -> None:
        """Put a loaded history in service (on the loop's thread), with what was recorded while it loaded."""
        self.loaded = loaded
        if self.lost:  # a lost store's (empty) history is never decided on
            return
        self._latest = max(self._latest, loaded.latest)
        self._r_horizon = packed.stamp(self._now() - self.retention.kept_refusals)
        ledgers = loaded.ledgers
        self._ledgers = ledgers
        early, self._early = self._early, []
        for kind, prof, key, at in early:
            if kind == "refusals":
                self.refusal_now(prof, key, at, write=False)
            elif kind == "consents":
                self.consent_now(prof, key, at, write=False)
            else:
                self.optout_now(prof, key, at, write=False)
        log.info("state: call history loaded from %s in %.2f s (%d rows read from SQLite, %d attempts)",
                 loaded.source, loaded.seconds, loaded.rows,
                 sum(led.attempts.attempts() for led in ledgers.values()))

    async def _load_in_background(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loaded = await loop.run_in_executor(None, self._read)
            flat = await loop.run_in_executor(None, snapshot_mod.flat, loaded.ledgers) if loaded.stale else None
        except Exception as e:
            if not self._closing:
                self._load_error = f"call history not loaded: {e}"
                log.exception("state: cannot load the call history from %s: calls stay blocked (state_unavailable)",
                              self.path)
            return
        if self._closing:
            return
        self._install(loaded)
        if flat is not None:  # taken before anything changed it: the rows read, and none after
            await loop.run_in_executor(None, self._write_snapshot, flat, loaded.tails)

    def _write_snapshot(self, flat: dict[str, list[array[int]]],
                        tails: dict[str, list[Any] | None] | None = None) -> None:
        """Write the snapshot of ``flat``, the columns of the ledgers when the database's tables ended at ``tails``
        (None: now, the database holding what memory does)."""
        if self.snapshot_path is None or self.path is None:
            return
        try:
            if tails is None:
                db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
                try:
                    tails = _tails(db)
                finally:
                    db.close()
            snapshot_mod.write(self.snapshot_path, flat, {
                "tails": tails,
                "retention_attempts": self._ret_s,
                "retention_refusals": int(self.retention.kept_refusals.total_seconds()),
            })
        except (OSError, sqlite3.Error) as e:
            log.error("state: cannot write the history snapshot %s: %s (the next start reads SQLite)",
                      self.snapshot_path, e)

    def _now(self) -> datetime:
        """The instant prunes count from: the clock, unless it is implausibly ahead (see gateway/clockguard.py)."""
        now = self._clock()
        bounded = self._guard.now()
        if bounded < now.timestamp():
            log.warning("state: the clock is %.1f days ahead of the newest record plus the uptime: nothing is pruned "
                        "beyond the plausible time", self._guard.ahead() / 86400)
            return datetime.fromtimestamp(bounded, UTC)
        return now

    def _plausible_stamp(self) -> int:
        """The stamp of the plausible bound, remembered in ``_plausible`` (a write at or before it needs no check)."""
        bound = self._guard.bound()
        self._plausible = packed.stamp(datetime.fromtimestamp(bound, UTC)) if bound is not None else 2**32 - 1
        return self._plausible

    @property
    def persistent(self) -> bool:
        return self._db is not None

    def expect_marker(self, professional: str, marker: str | None) -> None:
        self.expected_marker = marker

    async def read_marker(self, professional: str) -> str | None:
        """The marker of gateway.state.marker (None: not written, or memory://, which never has one to lose)."""
        if self._db is None:
            return None
        row = self._db.execute("SELECT value FROM marker WHERE key = 'store_id'").fetchone()
        return str(row[0]) if row else None

    async def write_marker(self, professional: str, marker: str, *, only_if_absent: bool = False) -> str:
        if self._db is None:
            return marker
        with self._flush_lock, self._db:
            self._db.execute("INSERT INTO marker (key, value) VALUES ('store_id', ?) ON CONFLICT (key) DO "
                             + ("NOTHING" if only_if_absent else "UPDATE SET value = excluded.value"), (marker,))
        held = await self.read_marker(professional) or marker
        if self.lost:
            self.lost = ""
            if self._ledgers is None and self.loaded is not None:
                self._install(self.loaded)
        return held

    def mark_lost(self) -> None:
        """Found lost (gateway.state.marker): no history is read from it until it is rebuilt."""
        self._ledgers = None

    def _loading(self) -> StateLoading:
        if self.lost:
            return StateLost(self.lost)
        return StateLoading(self._load_error or
                            f"call history loading ({time.monotonic() - self._loading_since:.0f} s)")

    def _ready(self) -> dict[str, packed.Ledger]:
        ledgers = self._ledgers
        if ledgers is None:
            raise self._loading()
        return ledgers

    def _ledger(self, ledgers: dict[str, packed.Ledger], professional: str) -> packed.Ledger:
        led = ledgers.get(professional)
        if led is None:
            led = ledgers[professional] = packed.Ledger()
        return led

    # -- reads -------------------------------------------------------------------------------------

    def history_now(self, professional: str, key: int) -> History:
        ledgers = self._ledgers
        if ledgers is None:
            raise self._loading()
        led = ledgers.get(professional)
        if led is None:
            return EMPTY_HISTORY
        return led.history(key, self._latest - self._ret_s, self._r_horizon)

    async def history(self, professional: str, key: int) -> History:
        return self.history_now(professional, key)

    def attempt_count_now(self, professional: str, key: int) -> int | None:
        """How many attempts the store keeps for the number when that is all its history holds; None when it
        also has a refusal or an opt-out. For a caller that decides from the count alone while it is below every
        cap (an offline replay: no History built per call) and reads :meth:`history_now` otherwise."""
        led = self._ready().get(professional)
        if led is None:
            return 0
        if led.refusals.get(key) is not None or led.optouts.get(key) is not None or led.consents.get(key) is not None:
            return None
        return led.attempts.count(key, self._latest - self._ret_s)

    def known_keys(self, professional: str) -> Collection[int] | None:
        ledgers = self._ledgers
        if ledgers is None:
            return None  # not yet known: ask by number (and be told it is loading)
        led = ledgers.get(professional)
        found = BitMap64()
        if led is not None:
            for table in (led.attempts, led.refusals, led.optouts, led.consents):
                for keys in table.numbers():
                    found.update(keys)
        # A roaring bitmap (a few bytes a number, not a set's ~60): sized, iterable and with `in`, which the
        # stubs do not declare as Collection.
        return cast(Collection[int], found)

    async def histories(self, professional: str, keys: Sequence[int]) -> dict[int, History]:
        found = {}
        for key in keys:
            h = self.history_now(professional, key)
            if h is not EMPTY_HISTORY:
                found[key] = h
        return found

    # -- writes ------------------------------------------------------------------------------------

    def attempt_now(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool:
        ledgers = self._ledgers
        if ledgers is None:
            raise self._loading()
        led = ledgers.get(professional) or self._ledger(ledgers, professional)
        t = packed.stamp(at)
        # A call dated by a clock that jumped ahead prunes nothing a right clock still needs: its horizon is
        # counted from the plausible now when ``at`` is beyond it (one comparison: the bound moves slowly).
        top = t if t <= self._plausible else min(t, self._plausible_stamp())
        if top > self._latest:
            self._latest = top
        if cap is None:
            counted = led.attempts.add(key, t, top - self._ret_s)
        else:
            counted = led.attempts.add(key, t, top - self._ret_s, packed.stamp(cap.since), cap.limit)
        if counted and self._db is not None:  # memory:// (tests, offline replays): not even the row's tuple
            self._queue("attempts", professional, key, at)
        return counted

    async def record_attempt(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool:
        return self.attempt_now(professional, key, at, cap)

    def refusal_now(self, professional: str, key: int, at: datetime, *, write: bool = True) -> None:
        ledgers = self._ledgers
        if ledgers is None:  # loading: written now, applied once loaded
            self._early.append(("refusals", professional, key, at))
            self._queue("refusals", professional, key, at)
            return
        if self._ledger(ledgers, professional).refusals.put(key, packed.stamp(at), later=True) and write:
            self._queue("refusals", professional, key, at)

    async def record_refusal(self, professional: str, key: int, at: datetime) -> None:
        self.refusal_now(professional, key, at)
        await self.sync()

    def optout_now(self, professional: str, key: int, at: datetime, *, write: bool = True) -> None:
        ledgers = self._ledgers
        if ledgers is None:  # loading: written now (SQLite keeps the first), applied once loaded
            self._early.append(("optouts", professional, key, at))
            self._queue("optouts", professional, key, at)
            return
        if self._ledger(ledgers, professional).optouts.put(key, packed.stamp(at), later=False) and write:
            self._queue("optouts", professional, key, at)

    async def record_optout(self, professional: str, key: int, at: datetime) -> None:
        self.optout_now(professional, key, at)
        await self.sync()

    def consent_now(self, professional: str, key: int, at: datetime, *, write: bool = True) -> None:
        ledgers = self._ledgers
        if ledgers is None:  # loading: written now, applied once loaded
            self._early.append(("consents", professional, key, at))
            self._queue("consents", professional, key, at)
            return
        if self._ledger(ledgers, professional).consents.put(key, packed.stamp(at), later=True) and write:
            self._queue("consents", professional, key, at)

    async def record_consent(self, professional: str, key: int, at: datetime) -> None:
        self.consent_now(professional, key, at)
        await self.sync()

    async def sync(self) -> None:
        """Write everything pending now (a refusal, an opt-out, a consent: on disk before it is acknowledged);
        StateUnavailable when it cannot be (the caller answers an error, the rows stay queued for the flusher)."""
        if self._db is None or not self._pending:
            return
        await asyncio.get_running_loop().run_in_executor(None, self.flush)
        if self._pending_error:
            raise StateUnavailable(f"call history not written to {self.path}: {self._pending_error}")

    def _queue(self, table: str, professional: str, key: int, at: datetime) -> None:
        if self._db is None:
            return
        self._seq += 1
        self._unsnapshotted += 1
        row = (self._seq, professional, key, _ts(at))
        with self._lock:
            self._pending.append((table, row))

    def flush(self) -> int:
        """Write what is pending in one transaction; returns the number of rows written."""
        with self._flush_lock:
            # Checked under the lock: close_now() may have closed the database while this job waited in the executor.
            return self._flush() if self._db is not None else 0

    def _flush(self) -> int:
        assert self._db is not None
        if self.path is not None and identity(self.path) != self._ident and not self._file_checked():
            return 0
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        try:
            with self._db:
                self._db.execute("BEGIN")
                for table, row in pending:
                    if table == "attempts":
                        self._db.execute("INSERT INTO attempts (rowid, professional, number, at) VALUES (?, ?, ?, ?)",
                                         row)
                    elif table in _LATEST:  # the latest refusal (consent): an earlier one never replaces it
                        self._db.execute(f"INSERT INTO {table} (rowid, professional, number, at) VALUES (?, ?, ?, ?) "
                                         "ON CONFLICT (professional, number) DO UPDATE SET rowid = excluded.rowid, "
                                         f"at = excluded.at WHERE excluded.at > {table}.at", row)
                    else:  # the first opt-out stands
                        self._db.execute("INSERT OR IGNORE INTO optouts (rowid, professional, number, at) "
                                         "VALUES (?, ?, ?, ?)", row)
        except sqlite3.Error as e:
            # Keep the rows: the next flush retries (a full disk may be freed).
            with self._lock:
                self._pending[:0] = pending
            self._pending_error = str(e)
            log.error("state: cannot write to %s: %s (%d rows kept in memory)", self.path, e, len(pending))
            return 0
        self._pending_error = ""
        return len(pending)

    def _file_checked(self) -> bool:
        """``state.db`` is no longer the file this store opened (checked before each write, under the flush lock).
        Deleted: it is written back from the open connection, which holds every row (nothing was lost yet), and
        the writes go on into it. Replaced by another file, or not restorable: the store is lost (every call fails
        closed, ``/healthz`` 503, ``dnc_state_lost_total``) and nothing more is written; the pending rows stay in
        memory. Returns whether writing may go on."""
        assert self._db is not None and self.path is not None
        path = self.path
        if identity(path) is None:
            try:
                restore_deleted(self._db, path)
                new = _connect(path)
            except (OSError, sqlite3.Error) as e:
                self._lose(f"{path} was deleted while the gateway writes it and could not be restored: {e}")
                return False
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db, self._ident = new, identity(path)
            log.error("state: %s was deleted while serving; restored from the gateway's open database: the "
                      "history goes on in it", path)
            return True
        self._lose(f"{path} was replaced by another file while the gateway writes it")
        return False

    def _lose(self, why: str) -> None:
        if not self.lost:
            self.lost_count += 1
            log.error("state: %s: calls are blocked until `dnc-gateway state rebuild`", why)
        self.lost = why
        self._pending_error = why
        self.mark_lost()

    # -- upkeep ------------------------------------------------------------------------------------

    def _prune_db(self) -> None:
        """Delete the rows no window needs any more (never a table's last row: see _PRUNE)."""
        now = self._now()
        try:
            with self._flush_lock:
                if self._db is None:  # closed while this job waited in the executor (see close_now)
                    return
                self._prune_locked(now)
        except sqlite3.Error as e:
            log.error("state: cannot prune %s: %s", self.path, e)

    def _prune_locked(self, now: datetime) -> None:
        assert self._db is not None
        with self._db:
            # What the next start believes (gateway/clockguard.py): the instant this prune counted from.
            self._db.execute("INSERT INTO marker (key, value) VALUES ('trusted_at', ?) ON CONFLICT (key) "
                             "DO UPDATE SET value = excluded.value", (repr(now.timestamp()),))
            self._db.execute(_PRUNE.format(table="attempts"), (_ts(now - self.retention.attempts),))
            for table in _LATEST:
                self._db.execute(_PRUNE.format(table=table), (_ts(now - self.retention.kept_refusals),))

    def sweep_step(self, shards: int = SWEEP_SHARDS) -> bool:
        """Prune the next ``shards`` shards of every ledger (memory held by numbers not called since their attempts
        expired); True when a pass over every shard has just ended."""
        ledgers = self._ledgers
        if ledgers is None:
            return False
        if self._sweep_at == 0:
            now = self._now()
            self._latest = max(self._latest, packed.stamp(now))
            self._r_horizon = packed.stamp(now - self.retention.kept_refusals)
        horizon = self._latest - self._ret_s
        lo = self._sweep_at
        hi = lo + shards
        end = 0
        for led in ledgers.values():
            for s in range(lo, min(hi, led.attempts.shards)):
                led.attempts.prune_shard(s, horizon)
            for s in range(lo, min(hi, led.refusals.shards)):
                led.refusals.prune_shard(s, self._r_horizon)
            for s in range(lo, min(hi, led.consents.shards)):
                led.consents.prune_shard(s, self._r_horizon)
            end = max(end, led.attempts.shards, led.refusals.shards, led.consents.shards)
        self._sweep_at = 0 if hi >= end else hi
        return self._sweep_at == 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._ledgers is None and self._loader is None:
            self._loading_since = time.monotonic()
            self._loader = loop.create_task(self._load_in_background(), name="state-loader")
        if self._task is None:
            self._task = loop.create_task(self._flusher(), name="state-flusher")

    async def wait_loaded(self) -> bool:
        """Wait for the background load (a caller's timeout leaves it running); True if the history is in place."""
        if self._ledgers is None and self._loader is not None:
            await asyncio.shield(self._loader)
        return self._ledgers is not None

    async def _flusher(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._flush_interval)
            if self._pending:
                await self._thread(loop, self.flush)
            if self._ledgers is None:
                continue
            if self._sweep_at or time.monotonic() >= self._sweep_due:
                if self._sweep_at == 0 and self._db is not None:
                    await self._thread(loop, self._prune_db)
                if self.sweep_step():
                    self._sweep_due = time.monotonic() + SWEEP_EVERY

    async def _thread(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], object]) -> None:
        """Run ``fn`` in a worker thread, shielded: cancelling the flusher (close) does not stop a thread, and
        closing the database under a statement another thread is running crashes the process (SQLite)."""
        self._in_thread = loop.run_in_executor(None, fn)
        await asyncio.shield(self._in_thread)

    async def close(self) -> None:
        self._closing = True
        await cancel(self._loader)
        await cancel(self._task)
        if self._in_thread is not None:  # a flush or prune the cancel left running: let it end first
            with contextlib.suppress(Exception):
                await self._in_thread
        self._task = self._loader = self._in_thread = None
        self.close_now()

    def close_now(self) -> None:
        self._closing = True
        # Under the flush lock: a flush or prune that the cancelled flusher left running in an executor thread
        # ends before the connection closes (closing it under a running statement crashed the process).
        with self._flush_lock:
            if self._db is None:
                return
            self._flush()
            if self._ledgers is not None and self._unsnapshotted and not self._pending:
                self._write_snapshot(snapshot_mod.flat(self._ledgers))
            self._db.close()
            self._db = None


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


def open_store(url: str, *, retention: Retention,
               connect_timeout: float = REDIS_DEFAULTS.connect_timeout, op_timeout: float = REDIS_DEFAULTS.op_timeout,
               retry_interval: float = REDIS_DEFAULTS.retry_interval,
               failures_to_open: int = REDIS_DEFAULTS.failures_to_open,
               max_connections: int = REDIS_DEFAULTS.max_connections,
               warm_connections: int = REDIS_DEFAULTS.warm_connections, background_load: bool = False) -> StateStore:
    """The store for a ``[gateway] state`` URL, keeping history for ``retention``.

    The other keywords are the ``[gateway] state_*`` settings of the Redis backend (its URL's query parameters
    ``socket_timeout`` and ``socket_connect_timeout`` win over them); the embedded store has no use for them.
    ``background_load``: an embedded store reads its history in a thread once started (see EmbeddedState).
    """
    if url.startswith(("redis://", "rediss://", "redis+sentinel://", "redis+cluster://")):
        # lazy: redis-py is imported only when a redis:// state is configured (start-up time of the CLI).
        from gateway.state.redis_store import RedisState

        return RedisState(url, retention=retention, settings=RedisSettings(
            connect_timeout=connect_timeout, op_timeout=op_timeout, retry_interval=retry_interval,
            failures_to_open=failures_to_open, max_connections=max_connections,
            warm_connections=min(warm_connections, max_connections)))
    return EmbeddedState.from_url(url, retention=retention, background_load=background_load)
