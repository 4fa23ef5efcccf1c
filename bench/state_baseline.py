"""Today's embedded store (``gateway/state/store.py`` at e5f94a5, before issue 17), kept verbatim for the baseline of
``bench/state.py``: a dict of lists of datetimes. Not used by the gateway. With it, the ``History`` of that time (a
tuple of datetimes, counted by a loop): today's one holds stamps.
"""
# ruff: noqa
# mypy: ignore-errors
from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from gateway.aio import cancel
from gateway.state.model import (
    REDIS_DEFAULTS,
    Cap,
    RedisSettings,
    Retention,
)


@dataclass(frozen=True, slots=True)
class History:
    """``gateway/state/model.py``'s History before issue 17 (verbatim)."""

    attempts: tuple[datetime, ...] = ()  # calls or attempted calls, oldest first (UTC)
    last_refusal: datetime | None = None  # the callee said "do not call me"
    opted_out_at: datetime | None = None  # added to the internal do-not-call list through the gateway
    consent_at: datetime | None = None

    def attempts_since(self, since: datetime) -> int:
        return sum(1 for t in self.attempts if t >= since)


EMPTY_HISTORY = History()

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

    async def record_refusal(self, professional: str, key: int, at: datetime) -> None: ...

    async def record_optout(self, professional: str, key: int, at: datetime) -> None: ...

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
"""


def _ts(t: datetime) -> float:
    return t.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EmbeddedState:
    """In-memory call history with write-through to SQLite (``path``) or none (``memory://``)."""

    @property
    def immediate(self) -> bool:
        """Its coroutines never wait, so the Gateway calls the ``*_now`` methods instead (no task per call).

        False for a subclass that overrides the coroutines (a test double that fails or waits).
        """
        cls = type(self)
        return cls.history is EmbeddedState.history and cls.record_attempt is EmbeddedState.record_attempt

    def __init__(self, path: Path | None = None, *, retention: Retention,
                 flush_interval: float = 0.05, clock: Callable[[], datetime] = _utc_now) -> None:
        self.path = path
        self.retention = retention
        self._clock = clock  # only for what is pruned at load; writes carry their own time
        self._attempts: dict[tuple[str, int], list[datetime]] = defaultdict(list)
        self._refusals: dict[tuple[str, int], datetime] = {}
        self._optouts: dict[tuple[str, int], datetime] = {}
        self._pending: list[tuple[str, tuple[str, int, float]]] = []
        self._lock = threading.Lock()
        self._flush_interval = flush_interval
        self._task: asyncio.Task[None] | None = None
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._load()

    @classmethod
    def from_url(cls, url: str, *, retention: Retention) -> EmbeddedState:
        if url.startswith("memory://"):
            return cls(None, retention=retention)
        if url.startswith("sqlite://"):
            return cls(Path(url.removeprefix("sqlite://")), retention=retention)
        raise ValueError(f"not an embedded state URL: {url!r}")

    def set_retention(self, retention: Retention) -> None:
        # Pruning reads self.retention at each write, so a longer retention applies from the next call on:
        # nothing still in memory is dropped under the old, shorter horizon. (What a shorter one dropped is gone.)
        self.retention = retention

    def _load(self) -> None:
        assert self._db is not None
        now = self._clock()
        self._db.execute("DELETE FROM attempts WHERE at < ?", (_ts(now - self.retention.attempts),))
        self._db.execute("DELETE FROM refusals WHERE at < ?", (_ts(now - self.retention.kept_refusals),))
        for prof, num, at in self._db.execute("SELECT professional, number, at FROM attempts ORDER BY at"):
            self._attempts[(prof, num)].append(_dt(at))
        for prof, num, at in self._db.execute("SELECT professional, number, at FROM refusals"):
            self._refusals[(prof, num)] = _dt(at)
        for prof, num, at in self._db.execute("SELECT professional, number, at FROM optouts"):
            self._optouts[(prof, num)] = _dt(at)

    # -- reads -------------------------------------------------------------------------------------

    def history_now(self, professional: str, key: int) -> History:
        k = (professional, key)
        attempts = self._attempts.get(k)
        refusal = self._refusals.get(k)
        optout = self._optouts.get(k)
        if attempts is None and refusal is None and optout is None:
            return EMPTY_HISTORY
        return History(tuple(attempts or ()), refusal, optout)

    async def history(self, professional: str, key: int) -> History:
        return self.history_now(professional, key)

    def attempt_count_now(self, professional: str, key: int) -> int | None:
        """How many attempts the store keeps for the number when that is all its history holds; None when it
        also has a refusal or an opt-out. For a caller that decides from the count alone while it is below every
        cap (an offline replay: no History built per call) and reads :meth:`history_now` otherwise."""
        k = (professional, key)
        refusals, optouts = self._refusals, self._optouts
        if (refusals and k in refusals) or (optouts and k in optouts):  # most stores have none: no look-up
            return None
        attempts = self._attempts.get(k)
        return len(attempts) if attempts else 0

    def known_keys(self, professional: str) -> Collection[int] | None:
        return {key for table in (self._attempts, self._refusals, self._optouts)
                for prof, key in table if prof == professional}

    async def histories(self, professional: str, keys: Sequence[int]) -> dict[int, History]:
        found = {}
        for key in keys:
            h = self.history_now(professional, key)
            if h is not EMPTY_HISTORY:
                found[key] = h
        return found

    # -- writes ------------------------------------------------------------------------------------

    def attempt_now(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool:
        k = (professional, key)
        times = self._attempts[k]
        horizon = at - self.retention.attempts
        while times and times[0] < horizon:
            times.pop(0)
        if cap is not None and sum(1 for t in times if t >= cap.since) >= cap.limit:
            return False
        times.append(at)
        if self._db is not None:  # memory:// (tests, offline replays): not even the row's tuple
            self._queue("attempts", (professional, key, _ts(at)))
        return True

    async def record_attempt(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool:
        return self.attempt_now(professional, key, at, cap)

    def refusal_now(self, professional: str, key: int, at: datetime) -> None:
        prev = self._refusals.get((professional, key))
        if prev is None or at > prev:
            self._refusals[(professional, key)] = at
            self._queue("refusals", (professional, key, _ts(at)))

    async def record_refusal(self, professional: str, key: int, at: datetime) -> None:
        self.refusal_now(professional, key, at)

    def optout_now(self, professional: str, key: int, at: datetime) -> None:
        if (professional, key) not in self._optouts:
            self._optouts[(professional, key)] = at
            self._queue("optouts", (professional, key, _ts(at)))

    async def record_optout(self, professional: str, key: int, at: datetime) -> None:
        self.optout_now(professional, key, at)

    def _queue(self, table: str, row: tuple[str, int, float]) -> None:
        if self._db is None:
            return
        with self._lock:
            self._pending.append((table, row))

    def flush(self) -> int:
        """Write what is pending in one transaction; returns the number of rows written."""
        if self._db is None:
            return 0
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        try:
            with self._db:
                self._db.execute("BEGIN")
                for table, row in pending:
                    verb = "INSERT" if table == "attempts" else "INSERT OR REPLACE"
                    self._db.execute(f"{verb} INTO {table} (professional, number, at) VALUES (?, ?, ?)", row)
        except sqlite3.Error as e:
            # Keep the rows: the next flush retries (a full disk may be freed).
            with self._lock:
                self._pending[:0] = pending
            log.error("state: cannot write to %s: %s (%d rows kept in memory)", self.path, e, len(pending))
            return 0
        return len(pending)

    async def start(self) -> None:
        if self._db is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flusher(), name="state-flusher")

    async def _flusher(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._flush_interval)
            if self._pending:
                await loop.run_in_executor(None, self.flush)

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
        self.close_now()

    def close_now(self) -> None:
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None


