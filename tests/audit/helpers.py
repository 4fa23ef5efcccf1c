"""What the audit tests share: records numbered from a fixed instant, a started log, a raw connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from gateway.audit import GENESIS, AuditLog, AuditReader, AuditRecord, record_row, row_hash
from gateway.config import AuditSection
from tests.conftest import FIXED_NOW

T0 = FIXED_NOW.timestamp()


def rec(i: int, *, at: float | None = None, verdict: str = "ALLOW", campaign: str = "prospect") -> AuditRecord:
    return AuditRecord(f"dec{i:06d}", T0 + i if at is None else at, campaign, f"+3361200{i % 10000:04d}", verdict,
                       None if verdict == "ALLOW" else "opposition_list", "allow" if verdict == "ALLOW" else "lists",
                       False, "enforce", "consent", {"bloctel": "2026-11-20:abc", "consent": "v2"}, "0162000000",
                       f"PJSIP/agent-{i}", f"1700000000.{i}", "agi", "test")


def ids(path: Path) -> list[str]:
    with AuditReader(path) as r:
        return [d["decision_id"] for d in r.query(limit=10**9)]


async def started(path: Path, **kw: Any) -> AuditLog:
    log = AuditLog(path, AuditSection(**kw))
    await log.start()
    return log


def db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def verification(path: Path) -> Any:
    with AuditReader(path) as r:
        return r.verify()


def chain_rows(n: int, *, v1: int | None = None) -> list[tuple[Any, ...]]:
    """``n`` stored rows (``seq, *STORED_COLUMNS, prev_hash, hash``) chained from the genesis hash: the first
    ``v1`` (default: half) written before ``written_at`` existed (NULL there), the others a quarter second
    after their decision."""
    v1 = n // 2 if v1 is None else v1
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        r = record_row(rec(seq))
        written = None if seq <= v1 else r[1] + 0.25
        h = row_hash(prev, seq, r, written)
        rows.append((seq, *r, written, prev, h))
        prev = h
    return rows


# The audit table as releases before ``written_at`` created it (schema 1, chain sha256-json-v1).
SCHEMA_V1 = """
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL, at REAL NOT NULL, campaign TEXT, number TEXT, verdict TEXT, reason TEXT, rule TEXT,
    would_block INTEGER, mode TEXT, regime TEXT, lists TEXT, caller_id TEXT, channel TEXT, uniqueid TEXT,
    source TEXT, detail TEXT,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX audit_by_number ON audit (number, at);
CREATE INDEX audit_by_time ON audit (at);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def old_database(path: Path, n: int) -> list[tuple[Any, ...]]:
    """An audit database as a release before ``written_at`` left it: ``n`` v1 rows; returns the rows."""
    rows = [(seq, *cols, prev, h) for seq, *cols, _, prev, h in chain_rows(n, v1=n)]
    conn = db(path)
    conn.executescript(SCHEMA_V1)
    conn.executemany(f"INSERT INTO audit VALUES ({', '.join('?' * len(rows[0]))})", rows)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", (
        ("schema", "1"), ("chain", "sha256-json-v1"), ("anchor_seq", "0"), ("anchor_hash", GENESIS),
        ("anchor_at", ""), ("head_seq", str(n)), ("head_hash", rows[-1][-1]), ("created", "2026-11-01T00:00:00Z")))
    conn.close()
    return rows
