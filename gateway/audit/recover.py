"""Counted attempts that survive a kill -9: the ALLOWs the history had not flushed, found in the audit trail.

The embedded history writes its rows in batches (every 50 ms): a kill -9 loses the attempts counted since the
last batch, and a fifth call in a 4-in-30-days campaign would be allowed after the restart. Every ALLOW answered
is already durable in the audit trail (``durable_allow``: it was committed before the answer), with its
number and its decision time, the very instant the history stores for its attempt. So before the history is
loaded, the ALLOWs of the trail that the history lacks are added to it:

- only those after the audit sequence the last recovery reached (kept in the history's ``marker`` table) and at
  most :data:`MARGIN` seconds older than the history's latest attempt (what was flushed before it is there), and
  within the attempts' retention;
- an ALLOW is counted unless it was a dry run (``dry_run``, ``replay``) or a retention record;
- an attempt already there (same number, same instant) is not added twice.

``dnc-gateway state rebuild`` uses the same reading with no lower bound but the retention, for a store that was
lost whole (gateway.state.marker).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.audit.reader import AuditReader
from gateway.state.store import _SCHEMA  # the history's own tables (created if the file is new)

MARGIN = 300.0  # seconds before the history's latest attempt from which the trail is read again
UNCOUNTED_SOURCES = ("dry_run", "replay", "retention")
AUDIT_SEQ = "audit_seq"  # the marker-table key: the audit sequence the last recovery reached


@dataclass(frozen=True, slots=True)
class Allowed:
    seq: int
    number: str  # E.164, as the trail stores it
    at: float


def counted_allows(reader: AuditReader, *, after_seq: int, since: float) -> Iterator[Allowed]:
    """The ALLOWs of the trail that counted an attempt, after ``after_seq`` and decided at or after ``since``."""
    marks = ", ".join("?" * len(UNCOUNTED_SOURCES))
    rows = reader.conn.execute(
        f"SELECT seq, number, at FROM audit WHERE at >= ? AND seq > ? AND verdict = 'ALLOW' "
        f"AND source NOT IN ({marks}) ORDER BY seq", (since, after_seq, *UNCOUNTED_SOURCES))
    for seq, number, at in rows:
        if isinstance(number, str) and number.startswith("+") and isinstance(at, float | int):
            yield Allowed(int(seq), number, float(at))


def head_seq(reader: AuditReader) -> int:
    row = reader.conn.execute("SELECT value FROM meta WHERE key = 'head_seq'").fetchone()
    return int(row[0]) if row else 0


def recover_attempts(state_path: Path, audit_path: Path, professional: str, key_of: Callable[[str], int],
                     *, keep_seconds: float, now: float) -> int:
    """Add to the SQLite history at ``state_path`` the attempts of the trail it lacks (before it is loaded);
    how many were added. ``key_of`` maps an E.164 number to the history's key (0: not a number)."""
    if not state_path.exists() or not audit_path.exists():
        return 0
    db = sqlite3.connect(str(state_path), isolation_level=None)
    try:
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM marker WHERE key = ?", (AUDIT_SEQ,)).fetchone()
        after = int(row[0]) if row else 0
        (last,) = db.execute("SELECT max(at) FROM attempts WHERE professional = ?", (professional,)).fetchone()
        since = max(now - keep_seconds, (float(last) - MARGIN) if last is not None else now - keep_seconds)
        added = 0
        with AuditReader(audit_path) as reader:
            reader.conn.execute("BEGIN")
            try:
                top = head_seq(reader)
                found = list(counted_allows(reader, after_seq=after, since=since))
            finally:
                reader.conn.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        try:
            (rowid,) = db.execute("SELECT max(coalesce((SELECT max(rowid) FROM attempts), 0), "
                                  "coalesce((SELECT max(rowid) FROM refusals), 0), "
                                  "coalesce((SELECT max(rowid) FROM optouts), 0), "
                                  "coalesce((SELECT max(rowid) FROM consents), 0))").fetchone()
            for a in found:
                key = key_of(a.number)
                if not key or db.execute("SELECT 1 FROM attempts WHERE professional = ? AND number = ? AND at = ?",
                                         (professional, key, a.at)).fetchone():
                    continue
                rowid += 1
                db.execute("INSERT INTO attempts (rowid, professional, number, at) VALUES (?, ?, ?, ?)",
                           (rowid, professional, key, a.at))
                added += 1
            db.execute("INSERT INTO marker (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                       "value = excluded.value", (AUDIT_SEQ, str(top)))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    finally:
        db.close()
    return added
