"""The audit trail's writer: an append-only, hash-chained log of every decision, in SQLite, group-committed.

Durability. The database runs in WAL mode with ``synchronous=FULL``: SQLite
fsyncs the WAL at every commit, so a committed record survives ``kill -9``
and a power cut (as far as the disk honours flushes). One dedicated writer
thread owns the connection and commits in groups: everything queued goes in one
transaction and one fsync, then every waiter of that group is woken at once.
``append(record, durable=True)`` returns only after the commit that holds the
record; ``durable=False`` returns at once and the record rides the next group
commit — it is lost only if the process dies before that commit.

Group commit without a fixed wait (the leader/follower scheme of database logs). Records queue into the
*open* group; the writer, whenever it is free, takes the oldest group whole and commits it at once. So the
first record of a quiet period is written and synced straight away, and the records that arrive while that
commit (its fsync) is in flight fill the next group, committed as soon as the first one is done: groups are
as large as the disk is slow, and nobody waits for a timer. ``[audit] group_commit_ms`` (default 0) adds an
optional wait after a group's first record, up to that many milliseconds, for disks where an fsync costs
much more than the wait (fewer, larger groups); a full group (``MAX_BATCH``) never waits.

Checkpoints are ours, not SQLite's (``wal_autocheckpoint=0``): run after the waiters are woken, so an ALLOW
never waits for one, and every few MB of WAL (``CHECKPOINT_PAGES``), so that the WAL is rewritten in place
rather than grown: an fsync that must also record a longer file costs more.

A record that cannot be committed (disk full, I/O error, queue over ``max_queue``) raises
:class:`AuditUnavailable` to a durable caller (the service then refuses the call); non-durable records of a
failed group are kept in order and retried, so nothing acknowledged is dropped while the writer lives.

Retention. Rows older than ``retention_days`` are purged as a contiguous prefix
(never a hole), in chunks, by the writer thread; each chunk moves the anchor in
the same transaction, so ``verify`` keeps passing after a purge.

Upgrade. A database from before ``written_at`` (schema 1, chain ``sha256-json-v1``) is upgraded when a writer
opens it: the column is added (``ALTER TABLE``: no row is rewritten, old rows keep NULL there and verify as
before) and the meta says schema 2, chain ``sha256-json-v2``, in one transaction. A gateway of an older
release then refuses to open the file (unknown chain scheme) rather than write rows its ``verify`` would
misread. Every row written from then on carries ``written_at``: the writer's clock when it commits the row.

Privacy. Numbers are personal data: the database is created with mode 0600
(SQLite gives its ``-wal`` and ``-shm`` files the same mode), and an existing one is brought to 0600.

Identity. The writer checks, before every commit, that the path still names the file it opened and that the
WAL beside it is still the one SQLite writes (device and inode): a file deleted, replaced (``mv``, a restore)
or a WAL deleted while serving would otherwise swallow every record committed since, with nothing noticing.
Once that happens, every durable record is refused (the service answers BLOCK ``audit_unavailable``) and the
log reports itself unavailable (``dnc_audit_up`` 0, ``/healthz`` 503) until the very file is back at its path;
a restart opens whatever is there. Records nobody waits for are kept for that retry.

Deadline. ``[audit] commit_timeout``: a durable record not committed within it is refused to its caller (the
call is answered BLOCK); if its commit happens after all, a second record with the same decision id says the
call was answered BLOCK (so the trail never shows an ALLOW that was not given without the BLOCK that was).
A commit or a queued group older than the deadline makes the log unavailable (``/healthz`` 503): a stalled
disk fails over to another gateway rather than hang every call.

Clock. Retention never purges because the wall clock jumped: the cutoff is counted from
:class:`gateway.clockguard.ClockGuard`'s plausible now (the instant the last purge used, ``trusted_at`` in the
meta, plus the uptime; a clock more than a week beyond is not believed),
and every purge writes a ``PURGE`` record into the chain (what was purged, up to which sequence), which
``audit verify`` lists.

The hash chain itself is :mod:`gateway.audit.chain`; queries and verification, :mod:`gateway.audit.reader`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from gateway.audit.chain import (
    CHAIN_SCHEME,
    CHAIN_SCHEME_V1,
    GENESIS,
    STORED_COLUMNS,
    WRITTEN_AT,
    RowEncoder,
    Verification,
)
from gateway.audit.reader import AuditError, AuditReader, iso_time, read_meta
from gateway.audit.record import AuditRecord, AuditUnavailable
from gateway.clockguard import ClockGuard
from gateway.config import AuditSection
from gateway.private import private_file
from gateway.sqlitefile import Identity, identity, restore_deleted

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2"  # 2: the written_at column (1: before it; upgraded on open)

# A new database gets written_at before the hashes; an upgraded one has it last (ALTER TABLE appends):
# every statement names its columns, so the two orders read and write the same.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL, at REAL NOT NULL, campaign TEXT, number TEXT, verdict TEXT, reason TEXT, rule TEXT,
    would_block INTEGER, mode TEXT, regime TEXT, lists TEXT, caller_id TEXT, channel TEXT, uniqueid TEXT,
    source TEXT, detail TEXT, written_at REAL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_number ON audit (number, at);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Two indexes only: each one costs every append ~2 µs of CPU. A number's history and a time range are what a
# regulator asks for; a campaign query goes through the time index, a decision id is a scan (rare).
_ROW_WIDTH = len(STORED_COLUMNS) + 3  # seq, the stored columns, prev_hash, hash
INSERT_ROWS = 64  # rows per INSERT statement (64 * 20 parameters: far below SQLite's 32,766)
# One statement per row count, 1..INSERT_ROWS: a group's rows go in one SQLite step per INSERT_ROWS rows, not one
# per row (executemany): sqlite3 releases and re-takes the GIL at every step, and a busy event loop makes each
# re-take wait. The 64 statements stay in sqlite3's statement cache (128).
_INSERTS = ("", *(f"INSERT INTO audit (seq, {', '.join(STORED_COLUMNS)}, prev_hash, hash) VALUES "
                  + ", ".join([f"({', '.join('?' * _ROW_WIDTH)})"] * n) for n in range(1, INSERT_ROWS + 1)))
# The head, in one step too: set (after reading it), or compare-and-set (new seq, new hash, expected seq, expected
# hash: changes both rows only if the head is still the expected one).
_SET_HEAD = "UPDATE meta SET value = CASE key WHEN 'head_seq' THEN ? ELSE ? END WHERE key IN ('head_seq', 'head_hash')"
_CAS_HEAD = ("UPDATE meta SET value = CASE key WHEN 'head_seq' THEN ? ELSE ? END "
             "WHERE (key = 'head_seq' AND value = ?) OR (key = 'head_hash' AND value = ?)")

MAX_BATCH = 1000  # rows per transaction: bounds how long one commit holds the GIL and its waiters
# Our explicit WAL checkpoints keep the WAL small, so that it is rewritten in place from its start: a commit
# that extends the file makes its fsync write the file's new size too, and costs 15-45 % more CPU than one that
# overwrites blocks the file already has (bench/audit.py --wal; docs/benchmarks.md).
# Counted in WAL pages, estimated: one per record (its leaf of the number index) and a few per commit (the table's
# and the time index's last leaves, the meta page).
CHECKPOINT_PAGES = 2_000  # ≈ 8 MB of WAL between two checkpoints
PAGES_PER_COMMIT = 4
PURGE_CHUNK = 50_000  # rows deleted per retention transaction, so a purge never stalls appends for long
PURGE_INTERVAL = 3600.0  # seconds between retention passes
RETRY_BACKOFF = (0.01, 0.25)  # first and longest wait before retrying a failed commit
TRUSTED_AT = "trusted_at"  # meta: the instant the last purge counted from (what the next start believes)
IDENTITY_EVERY = 1.0  # seconds between two checks of the file's identity while no record comes
PURGE_VERDICT = "PURGE"  # the verdict of a retention record: what was purged, up to which sequence
PURGE_SOURCE = "retention"
LATE = "answered BLOCK: its ALLOW record was not committed within [audit] commit_timeout"


class AuditMetrics(Protocol):
    def audit_commit(self, seconds: float, records: int, queue_depth: int) -> None: ...


# What a durable record's caller is told when its group is settled, on the loop: None once the record is committed,
# else why it is not (the service then refuses the call).
Committed = Callable[[AuditUnavailable | None], None]
# A record's waiter: the future an ``append`` awaits, the callback of an ``append_then``, or None (nobody waits).
Waiter = asyncio.Future[None] | Committed | None


class _Group:
    """The records of one future commit, in order, with their waiters: what the writer takes whole.

    Two parallel lists rather than an object per record: the call path appends a record and its waiter
    (``None`` when nobody waits) and allocates nothing else. Each durable caller keeps a waiter of its own (not
    one future shared by the group) so that a caller cancelled while waiting (a hung-up call) cancels only itself.
    Mutable, and owned by whoever holds ``AuditLog._cond`` until the writer takes it off the queue.
    """

    __slots__ = ("futures", "records", "started")

    def __init__(self, started: float) -> None:
        self.records: list[AuditRecord] = []
        self.futures: list[Waiter] = []
        self.started = started  # time.monotonic() of the first record: what a group_commit_ms wait counts from


def _chain(prepared: Sequence[tuple[tuple[Any, ...], str]], seq: int, head: str,
           written: float) -> tuple[list[Any], int, str]:
    """The INSERT parameters of prepared rows chained after ``seq``/``head`` (every row's values one after the
    other: no tuple per row), and the new head."""
    stamp, chain = RowEncoder.written(written), RowEncoder.hash
    params: list[Any] = []
    for row, body in prepared:
        seq += 1
        h = chain(head, seq, body, stamp)
        params += (seq, *row, written, head, h)
        head = h
    return params, seq, head


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite copies the mode to -wal and -shm); an
    existing one, and its companions, made 0600 (whatever the umask was when they were created)."""
    private_file(path)


def identity_problem(path: Path, db: Identity | None, wal: Identity | None) -> str | None:
    """Why ``path`` (and its WAL) are no longer the files the writer opened, or None while they are."""
    now = identity(path)
    if now is None:
        return f"{path} was deleted while the gateway writes it"
    if now != db:
        return f"{path} was replaced by another file while the gateway writes it"
    if wal is not None:
        w = identity(f"{path}-wal")
        if w is None:
            return f"{path}-wal was deleted while the gateway writes it"
        if w != wal:
            return f"{path}-wal was replaced by another file while the gateway writes it"
    return None


def newest_time(conn: sqlite3.Connection) -> float | None:
    """The latest instant the trail holds (its last record's decision or write time), None when it is empty."""
    row = conn.execute(f"SELECT at, {WRITTEN_AT} FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return None
    return max(float(v) for v in row if v is not None)


def open_writer(path: Path) -> sqlite3.Connection:
    """Open (creating it 0600 if needed) the audit database for writing, schema and meta in place."""
    _create_private(path)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            raise sqlite3.OperationalError("cannot switch the audit database to WAL mode")
        conn.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit: acknowledged = on disk
        conn.execute("PRAGMA wal_autocheckpoint=0")  # we checkpoint after waking waiters, not inside a commit
        conn.execute("PRAGMA journal_size_limit=67108864")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        try:
            _migrate(conn, path)
            for key, value in (("schema", SCHEMA_VERSION), ("chain", CHAIN_SCHEME), ("anchor_seq", "0"),
                               ("anchor_hash", GENESIS), ("anchor_at", ""), ("head_seq", "0"),
                               ("head_hash", GENESIS), ("created", iso_time(time.time()))):
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        chain = read_meta(conn).get("chain")
        if chain != CHAIN_SCHEME:
            raise AuditError(f"{path}: chain scheme {chain!r}, this gateway writes {CHAIN_SCHEME!r}")
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Upgrade a schema-1 database in place (inside the caller's write transaction: two gateways opening the
    same file at once upgrade it once). Nothing is rewritten: old rows keep verifying as v1 rows."""
    chain = dict(conn.execute("SELECT key, value FROM meta WHERE key = 'chain'")).get("chain")
    if chain not in (None, CHAIN_SCHEME_V1, CHAIN_SCHEME):
        # A scheme this release does not know (a newer one): touch nothing, open_writer refuses the file.
        return
    columns = {r[1] for r in conn.execute("PRAGMA table_info(audit)")}
    if WRITTEN_AT not in columns:
        conn.execute(f"ALTER TABLE audit ADD COLUMN {WRITTEN_AT} REAL")
        log.warning("%s: audit database upgraded to schema %s (records now say when they were written)", path,
                    SCHEMA_VERSION)
    if chain == CHAIN_SCHEME_V1:
        conn.executemany("UPDATE meta SET value = ? WHERE key = ?",
                         ((CHAIN_SCHEME, "chain"), (SCHEMA_VERSION, "schema")))


def purge_chunk(conn: sqlite3.Connection, cutoff: float, chunk: int = PURGE_CHUNK) -> int:
    """Delete up to ``chunk`` of the oldest rows decided before ``cutoff``, moving the anchor; rows deleted.

    Only a prefix in ``seq`` order goes: the first row at or after the cutoff stops the purge, so a clock step
    back can keep a few old rows a little longer but never leaves a hole in the chain.
    """
    meta = read_meta(conn)
    anchor = int(meta["anchor_seq"])
    rows = conn.execute("SELECT seq, at, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                        (anchor, chunk)).fetchall()
    upto = None
    for seq, at, h in rows:
        if at >= cutoff:
            break
        upto = (seq, at, h)
    if upto is None:
        return 0
    seq, at, h = upto
    conn.execute("BEGIN IMMEDIATE")
    try:
        deleted = conn.execute("DELETE FROM audit WHERE seq <= ?", (seq,)).rowcount
        conn.executemany("UPDATE meta SET value = ? WHERE key = ?",
                         ((str(seq), "anchor_seq"), (h, "anchor_hash"), (iso_time(at), "anchor_at")))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return int(deleted)


class AuditLog:
    """The gateway's audit sink: ``await append(record, durable=...)``, group-committed by one writer thread.

    ``clock`` (UNIX seconds) stamps each row's ``written_at`` at its commit and dates the retention cutoff.
    """

    def __init__(self, path: Path, config: AuditSection, *, clock: Callable[[], float] = time.time,
                 purge_interval: float = PURGE_INTERVAL) -> None:
        self.path = Path(path)
        self.config = config
        self.metrics: AuditMetrics | None = None
        self.clock = clock
        self.purge_interval = purge_interval
        self._cond = threading.Condition()
        # Oldest first; only the last group is open to new records (and only below MAX_BATCH records).
        self._groups: deque[_Group] = deque()
        self._queued = 0  # records in self._groups
        self._closing = False
        self._dead: str | None = "audit log not started"
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: sqlite3.Connection | None = None
        self._calls: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._seq = 0
        self._head = GENESIS
        self._written = 0
        self._commits = 0
        self._failures = 0
        self._last_latency = 0.0
        self._last_error = ""
        self._failing = False  # the last commit failed (disk full, I/O error): records are refused or retried
        self._since_checkpoint = 0  # WAL pages written since the last checkpoint (estimated)
        self._next_purge = 0.0
        self._encoder = RowEncoder()  # the writer thread's own (its lists cache)
        self._ident: Identity | None = None  # the database file and its WAL the writer opened
        self._wal_ident: Identity | None = None
        self._lost: str | None = None  # why the file at the path is no longer the one opened (None: it is)
        self._committing_since = 0.0  # time.monotonic() when the commit in flight began (0: none in flight)
        self._guard: ClockGuard | None = None  # the plausible "now" of retention purges (see gateway.clockguard)
        self.last_purge: dict[str, Any] | None = None  # the last purge: records, up to which seq, when
        self.restored = 0  # times the file or its WAL was deleted and put back from the open database

    # -- lifecycle --

    async def start(self) -> None:
        """Open the database in the writer thread; raises AuditUnavailable if it cannot be opened."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._closing = False
        self._thread = threading.Thread(target=self._run, args=(ready,), name="audit-writer", daemon=True)
        self._thread.start()
        try:
            await ready
        except BaseException:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
            raise

    async def close(self) -> None:
        """Commit everything queued, checkpoint and close the database."""
        thread = self._thread
        if thread is None:
            return
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        await asyncio.to_thread(thread.join)
        self._thread = None

    # -- the call path --

    async def append(self, record: AuditRecord, *, durable: bool) -> None:
        """Queue a record; with ``durable`` return once it is committed to disk (or raise AuditUnavailable)."""
        if not durable:
            self.append_nowait(record)
            return
        limit = self.config.commit_timeout
        if limit <= 0:
            future = asyncio.get_running_loop().create_future()
            self._enqueue(record, future)
            await future
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settled(e: AuditUnavailable | None) -> None:
            if not done.done():
                if e is None:
                    done.set_result(None)
                else:
                    done.set_exception(e)

        self.append_then(record, settled)
        await done

    def append_nowait(self, record: AuditRecord) -> None:
        """Queue a record that the answer does not wait for (a BLOCK); AuditUnavailable if it cannot be."""
        self._enqueue(record, None)

    def append_then(self, record: AuditRecord, done: Committed) -> None:
        """Queue a durable record; ``done(None)`` is called on the loop once it is committed, ``done(error)`` if it
        cannot be. AuditUnavailable at once (and ``done`` never called) if it cannot even be queued.

        :meth:`append` without the future and the coroutine that awaits it: the group's wake-up calls ``done``
        itself, so a FastAGI session answers from that one callback, with no task of its own (see the service's
        ``Gateway.finish_then``). ``done`` runs inside the wake-up of the whole group: it must not block.

        With ``[audit] commit_timeout``, ``done(AuditUnavailable)`` is called once that time has passed without
        the commit; if the record is committed later, a record with the same decision id saying the call was
        answered BLOCK follows it in the chain.
        """
        limit = self.config.commit_timeout
        loop = self._loop
        if limit <= 0 or loop is None:
            self._enqueue(record, done)
            return
        answered: list[bool] = [False]  # done called (by the commit or by the deadline)

        def expire() -> None:
            if not answered[0]:
                answered[0] = True
                done(AuditUnavailable(f"audit record not committed within {limit:g} s (commit_timeout): "
                                      f"{self._lost or self._last_error or 'disk stalled'}"))

        timer = loop.call_later(limit, expire)

        def committed(e: AuditUnavailable | None) -> None:
            timer.cancel()
            if not answered[0]:
                answered[0] = True
                done(e)
            elif e is None:  # committed as an ALLOW after its caller was answered BLOCK: say so in the chain
                with contextlib.suppress(AuditUnavailable):
                    self.append_nowait(record._replace(verdict="BLOCK", reason="audit_unavailable",
                                                       rule="audit_unavailable", detail=LATE))

        try:
            self._enqueue(record, committed)
        except BaseException:
            timer.cancel()
            raise

    def _enqueue(self, record: AuditRecord, future: Waiter) -> None:
        with self._cond:
            if self._dead is not None or self._closing:
                raise AuditUnavailable(self._dead or "audit log closing")
            depth = self._queued
            if depth >= self.config.max_queue:
                raise AuditUnavailable(f"audit queue full ({depth} records waiting to be written)")
            groups = self._groups
            if groups and len(group := groups[-1].records) < MAX_BATCH:
                group.append(record)
                groups[-1].futures.append(future)
                size = len(group)
            else:
                new = _Group(time.monotonic())
                new.records.append(record)
                new.futures.append(future)
                groups.append(new)
                size = 1
            self._queued = depth + 1
            # The writer only sleeps with nothing queued (or through a group_commit_ms wait): wake it for the
            # first record, and for a full group that must not wait.
            if depth == 0 or size >= MAX_BATCH:
                self._cond.notify()

    # -- reads (any thread) --

    def query(self, number: str | None = None, campaign: str | None = None, since: float | None = None,
              until: float | None = None, limit: int = 1000, newest_first: bool = False) -> list[dict[str, Any]]:
        """Committed records matching every filter given (``number`` as stored: E.164), oldest first."""
        with AuditReader(self.path) as reader:
            return reader.query(number, campaign, since, until, limit, newest_first)

    async def query_async(self, number: str | None = None, campaign: str | None = None, since: float | None = None,
                          until: float | None = None, limit: int = 1000,
                          newest_first: bool = False) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.query, number, campaign, since, until, limit, newest_first)

    def verify(self) -> Verification:
        with AuditReader(self.path) as reader:
            return reader.verify()

    def stats(self) -> dict[str, Any]:
        """For metrics and health: queue depth, last commit latency (seconds), records written since start."""
        with self._cond:
            depth = self._queued
            oldest = self._groups[0].started if self._groups else 0.0
        stalled = self._stalled(oldest)
        lost = self._lost
        if self._ident is not None and lost is None and self._dead is None and not self._closing:
            # Also between commits, so that a quiet gateway says so before its next call (the writer checks and
            # restores a deleted file within IDENTITY_EVERY seconds).
            lost = identity_problem(self.path, self._ident, self._wal_ident)
        problem = self._dead or lost or stalled or (self._last_error if self._failing else "")
        guard = self._guard
        return {"queue_depth": depth, "last_commit_seconds": self._last_latency, "records_written": self._written,
                "commits": self._commits, "failures": self._failures, "last_error": self._last_error,
                "head_seq": self._seq, "problem": problem, "file_lost": self._lost is not None,
                "stalled": bool(stalled), "restored": self.restored,
                "clock_ahead_seconds": guard.ahead() if guard is not None else 0.0,
                "available": self._dead is None and not self._closing and not self._failing and lost is None
                and not stalled}

    def _stalled(self, oldest_queued: float) -> str:
        """Why the disk looks stalled (a commit in flight, or a group waiting, longer than commit_timeout)."""
        limit = self.config.commit_timeout
        if limit <= 0:
            return ""
        now = time.monotonic()
        since = self._committing_since
        if since and now - since > limit:
            return f"an audit commit has been in flight for {now - since:.1f} s (commit_timeout {limit:g} s)"
        if oldest_queued and now - oldest_queued > limit and not self._closing:
            return f"audit records have waited {now - oldest_queued:.1f} s for a commit (commit_timeout {limit:g} s)"
        return ""

    async def run_in_writer(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(connection)`` in the writer thread between two commits (maintenance, tests)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._cond:
            if self._dead is not None or self._closing:
                raise AuditUnavailable(self._dead or "audit log closing")
            self._calls.append((fn, future))
            self._cond.notify()
        return await future

    async def purge(self) -> int:
        """Apply the retention now; returns the number of rows deleted."""
        return int(await self.run_in_writer(lambda conn: self._purge_all(conn, self.clock())))

    # -- writer thread --

    def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            conn = open_writer(self.path)
            meta = read_meta(conn)
            self._seq, self._head = int(meta["head_seq"]), meta["head_hash"]
            self._ident, self._wal_ident = identity(self.path), identity(f"{self.path}-wal")
            trusted = read_meta(conn).get(TRUSTED_AT)
            self._guard = ClockGuard(float(trusted) if trusted else newest_time(conn), clock=self.clock)
        except Exception as e:
            self._settle_call(ready, None, AuditUnavailable(f"{self.path}: cannot open audit database: {e}"))
            return
        self._conn = conn
        self._dead = None
        self._next_purge = time.monotonic()
        self._settle_call(ready, None, None)
        try:
            self._loop_forever(conn)
        except BaseException as e:  # never expected: keep refusing appends rather than accept them into a void
            log.exception("audit writer died")
            self._dead = f"audit writer died: {e}"
            self._fail_all(self._dead)
        finally:
            conn = self._conn or conn
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            self._conn = None
            if self._dead is None:
                self._dead = "audit log closed"

    def _loop_forever(self, conn: sqlite3.Connection) -> None:
        delay = self.config.group_commit_ms / 1000.0
        backoff = retry_at = 0.0
        while True:
            conn = self._conn or conn  # reopened after its WAL or its file was deleted (see _recover)
            with self._cond:
                while not self._groups and not self._calls and not self._closing:
                    wait = self._next_purge - time.monotonic()
                    if wait <= 0:
                        break
                    if not self._cond.wait(min(wait, IDENTITY_EVERY)):
                        break  # quiet for a while: check the file is still the one opened (below)
                groups = self._groups
                if groups and not self._closing and (delay or retry_at):
                    # Only with a group_commit_ms or after a failed commit: wait until the oldest group is that
                    # old (or the retry backoff is over), unless it fills up. Otherwise commit at once.
                    deadline = max(groups[0].started + delay, retry_at)
                    while not self._closing and not self._calls and len(groups[0].records) < MAX_BATCH:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                # The leader/follower hand-off: take the oldest group whole; what arrives from now on, while
                # this group is committed and synced, opens the next one.
                group = groups.popleft() if groups else None
                if group is not None:
                    self._queued -= len(group.records)
                calls, self._calls = self._calls, []
                closing = self._closing
            if group is not None:
                if self._commit(conn, group):
                    backoff = retry_at = 0.0
                else:
                    backoff = min(max(backoff * 2, RETRY_BACKOFF[0]), RETRY_BACKOFF[1])
                    retry_at = time.monotonic() + backoff
                    if closing:
                        self._give_up()
                        return
            for fn, future in calls:
                try:
                    self._settle_call(future, fn(conn), None)
                except Exception as e:
                    self._settle_call(future, None, e)
            if group is None and not calls and not closing and self._ident is not None:
                lost = identity_problem(self.path, self._ident, self._wal_ident)
                if lost is not None and self._lost is None and not self._recover(conn, lost):
                    log.error("audit: %s: records are refused until that file is back or the gateway restarts", lost)
                    self._lost = lost
                elif lost is None and self._lost is not None:
                    self._lost = None
                conn = self._conn or conn
            if self._since_checkpoint >= CHECKPOINT_PAGES:
                self._checkpoint(conn)
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + self.purge_interval
                try:
                    self._purge_all(conn, self.clock())
                except sqlite3.Error as e:
                    log.error("audit retention purge failed: %s", e)
            with self._cond:
                if self._closing and not self._groups and not self._calls:
                    return

    def _commit(self, conn: sqlite3.Connection, group: _Group) -> bool:
        """Write and sync one group in one transaction, then wake its waiters (one callback on their loop)."""
        started = time.perf_counter()
        records, futures = group.records, group.futures
        prepared, records, futures = self._prepare(records, futures)
        if not records:
            return True
        self._committing_since = time.monotonic()
        try:
            lost = identity_problem(self.path, self._ident, self._wal_ident)
            if lost is not None and self._recover(conn, lost):
                conn = self._conn or conn
                lost = None
            if lost is not None:
                if self._lost is None:
                    log.error("audit: %s: records are refused (calls answered BLOCK audit_unavailable) until that "
                              "file is back at its path or the gateway restarts", lost)
                self._lost = lost
                raise AuditUnavailable(lost)
            if self._lost is not None:
                log.warning("audit: %s is the file the gateway opened again: commits resume", self.path)
                self._lost = None
            # The statements of a commit, each in the sqlite3 call that releases the GIL the fewest times (each
            # release can hand the GIL to the busy event loop and wait for it back): BEGIN through executescript
            # (one release; in Python 3.11 it would first commit an open transaction: there is none, a failed
            # commit rolls back), the DML through executemany (no last-rowid call), COMMIT through commit().
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.executescript("BEGIN IMMEDIATE")
            # When the rows are written, as opposed to the decision time each one carries: read once the
            # write lock is held, so it is the commit's time, group commit delay and lock wait included.
            written = float(self.clock())
            # Chained from the head this writer left, and the head moved in the same step only if it is still
            # that one (compare and set, under the write lock): one statement, one GIL hand-off, fewer per commit.
            seq0, head0 = self._seq, self._head
            params, seq, head = _chain(prepared, seq0, head0, written)
            if conn.executemany(_CAS_HEAD, ((str(seq), head, str(seq0), head0),)).rowcount != 2:
                # Another process appended to this file since (two gateways on one host): chain from its head,
                # read under the write lock, so that their records interleave in one chain instead of forking it.
                meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('head_seq', 'head_hash')"))
                params, seq, head = _chain(prepared, int(meta["head_seq"]), meta["head_hash"], written)
                conn.execute(_SET_HEAD, (str(seq), head))
            for start in range(0, len(prepared), INSERT_ROWS):
                rows = min(INSERT_ROWS, len(prepared) - start)
                conn.executemany(_INSERTS[rows], (params[start * _ROW_WIDTH:(start + rows) * _ROW_WIDTH],))
            conn.commit()
        except (sqlite3.Error, KeyError, ValueError, AuditUnavailable) as e:
            self._committing_since = 0.0
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            self._failures += 1
            self._failing = True
            self._last_error = str(e)
            # Durable callers learn now (the service refuses their call); the others were acknowledged
            # already, so they go back to the head of the queue, in order, for the next attempt.
            retry = _Group(time.monotonic())
            retry.records = [r for r, f in zip(records, futures, strict=True) if f is None]
            retry.futures = [None] * len(retry.records)
            if retry.records:
                with self._cond:
                    self._groups.appendleft(retry)  # before anything queued since: the chain keeps their order
                    self._queued += len(retry.records)
            log.error("audit commit of %d records failed: %s (%d kept for retry)", len(records), e,
                      len(retry.records))
            self._settle(futures, str(e) if isinstance(e, AuditUnavailable) else f"audit database error: {e}")
            return False
        self._committing_since = 0.0
        if self._failing:
            log.warning("audit commits work again (%d records in this commit)", len(records))
        self._seq, self._head = seq, head
        self._failing = False
        self._written += len(records)
        self._commits += 1
        self._since_checkpoint += len(records) + PAGES_PER_COMMIT
        self._last_latency = time.perf_counter() - started
        self._settle(futures, None, committed=len(records))
        return True

    def _recover(self, conn: sqlite3.Connection, lost: str) -> bool:
        """Put back what was deleted from under the writer, from its open connection, which still sees every
        committed record: a deleted WAL is checkpointed into the database and a new one opened; a deleted database
        is copied whole (SQLite's backup API) to its path. The chain then continues in the file at the path, and
        nothing acknowledged is lost. A file *replaced* by another is never overwritten: that stays refused."""
        if "replaced" in lost:
            return False
        try:
            if identity(self.path) is None:
                restore_deleted(conn, self.path)
            else:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            new = open_writer(self.path)
            meta = read_meta(new)
            if (int(meta["head_seq"]), meta["head_hash"]) != (self._seq, self._head):
                new.close()
                raise AuditError(f"head of the reopened file is seq {meta['head_seq']}, expected {self._seq}")
        except (OSError, sqlite3.Error, AuditError, KeyError, ValueError) as e:
            log.error("audit: %s; it could not be restored: %s", lost, e)
            return False
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        self._conn = new
        self._ident, self._wal_ident = identity(self.path), identity(f"{self.path}-wal")
        self._lost = None
        self.restored += 1
        log.error("audit: %s; restored from the gateway's open database (head seq %d): the chain continues",
                  lost, self._seq)
        return True

    def _prepare(self, records: list[AuditRecord], futures: list[Waiter]
                 ) -> tuple[list[tuple[tuple[Any, ...], str]], list[AuditRecord], list[Waiter]]:
        """Each record's stored columns and canonical JSON (:class:`RowEncoder`), before the transaction; a
        malformed record is left out (its caller told at once) without costing the others their durability."""
        encode = self._encoder.row
        try:
            return [encode(r) for r in records], records, futures
        except Exception:  # rare: find the bad ones, one record at a time
            pass
        prepared: list[tuple[tuple[Any, ...], str]] = []
        kept: list[AuditRecord] = []
        waiting: list[Waiter] = []
        for record, future in zip(records, futures, strict=True):
            try:
                prepared.append(encode(record))
            except Exception as e:
                log.error("audit: record %r cannot be stored: %s", getattr(record, "decision_id", "?"), e)
                self._settle([future], f"record cannot be stored: {e}")
                continue
            kept.append(record)
            waiting.append(future)
        return prepared, kept, waiting

    def _settle(self, futures: Sequence[Waiter], error: str | None, committed: int = 0) -> None:
        """Wake the waiters of a group on their loop, in one callback (and report the commit to metrics).

        One ``call_soon_threadsafe`` per group, whatever its size: each one costs a lock and a write to the loop's
        self-pipe. ``futures`` holds ``None`` for records nobody waits for (it is the group's list, not a copy).
        A callback waiter (:meth:`append_then`) is called right here; a future's awaiting task resumes later.
        """
        loop = self._loop
        if loop is None or not (committed or any(f is not None for f in futures)):
            return
        depth = self._queued  # for metrics only: an int read without the lock is good enough
        latency = self._last_latency

        def wake() -> None:
            failure = AuditUnavailable(error) if error is not None else None
            for f in futures:
                if f is None:
                    continue
                if isinstance(f, asyncio.Future):
                    if not f.done():  # done: its caller was cancelled (a hung-up call)
                        if failure is None:
                            f.set_result(None)
                        else:
                            f.set_exception(AuditUnavailable(error))
                    continue
                try:
                    f(failure)
                except Exception:  # one caller's bug must not leave the rest of the group unanswered
                    log.exception("audit: a commit callback failed")
            if committed and self.metrics is not None:
                try:
                    self.metrics.audit_commit(latency, committed, depth)
                except Exception:
                    log.exception("audit metrics hook failed")

        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            loop.call_soon_threadsafe(wake)

    def _settle_call(self, future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        def done() -> None:
            if future.done():
                return
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

        with contextlib.suppress(RuntimeError):
            future.get_loop().call_soon_threadsafe(done)

    def _take_all(self) -> tuple[int, list[Waiter]]:
        """Empty the queue: how many records it held and their futures (the writer gives up on them)."""
        with self._cond:
            groups, self._groups = self._groups, deque()
            count, self._queued = self._queued, 0
        return count, [f for g in groups for f in g.futures]

    def _give_up(self) -> None:
        lost, futures = self._take_all()
        if lost:
            log.error("audit: closing with %d records that could not be written (%s)", lost, self._last_error)
        self._settle(futures, f"audit database error: {self._last_error}")

    def _fail_all(self, error: str) -> None:
        _, futures = self._take_all()
        with self._cond:
            calls, self._calls = self._calls, []
        self._settle(futures, error)
        for _, future in calls:
            self._settle_call(future, None, AuditUnavailable(error))

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._since_checkpoint = 0
        except sqlite3.Error as e:
            log.warning("audit checkpoint failed: %s", e)

    def _purge_all(self, conn: sqlite3.Connection, now: float) -> int:
        """Apply the retention from ``now`` (the wall clock), never beyond the plausible now of the clock guard;
        a purge that deleted records writes a PURGE record into the chain saying what it deleted."""
        guard = self._guard
        if guard is not None:
            ahead = guard.ahead()
            if ahead > 0:
                log.warning("audit retention: the clock is %.0f days ahead of the newest record plus the uptime: "
                            "purging only what is older than the retention at the plausible time", ahead / 86400)
            now = min(now, guard.now())
        if self._lost is not None:
            return 0  # not the file the gateway opened: touch nothing in it
        self._trust(conn, now)
        cutoff = now - self.config.retention_days * 86400.0
        first = int(read_meta(conn)["anchor_seq"]) + 1
        total = 0
        while True:
            n = purge_chunk(conn, cutoff)
            total += n
            if n < PURGE_CHUNK:
                break
            with self._cond:  # appends waiting: serve them, finish the purge on the next pass
                if self._groups:
                    self._next_purge = time.monotonic()
                    break
        if total:
            upto = int(read_meta(conn)["anchor_seq"])
            log.info("audit retention: %d records older than %d days purged (seq %d..%d)", total,
                     self.config.retention_days, first, upto)
            self._record_purge(conn, now, cutoff, first, upto, total)
        return total

    @staticmethod
    def _trust(conn: sqlite3.Connection, now: float) -> None:
        try:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                         "value = excluded.value", (TRUSTED_AT, repr(float(now))))
        except sqlite3.Error as e:
            log.warning("audit: trusted time not recorded: %s", e)

    def _record_purge(self, conn: sqlite3.Connection, now: float, cutoff: float, first: int, upto: int,
                      total: int) -> None:
        """Write the PURGE record of a purge into the chain (in the writer thread, as one more commit)."""
        detail = (f"retention: {total} records purged, seq {first}..{upto}, decided before {iso_time(cutoff)} "
                  f"({self.config.retention_days} days)")
        record = AuditRecord(f"purge-{upto}", now, "", "", PURGE_VERDICT, PURGE_SOURCE, PURGE_SOURCE, False, "", "",
                             source=PURGE_SOURCE, detail=detail)
        self.last_purge = {"records": total, "first_seq": first, "upto_seq": upto, "cutoff": iso_time(cutoff)}
        group = _Group(time.monotonic())
        group.records.append(record)
        group.futures.append(None)
        if not self._commit(conn, group):
            log.error("audit retention: the purge record could not be written (kept for retry)")
