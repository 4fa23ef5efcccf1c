"""What the audit tests share: records numbered from a fixed instant, a started log, a raw connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from gateway.audit import GENESIS, AuditLog, AuditReader, AuditRecord, chain_hash, record_row
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


def chain_rows(n: int) -> list[tuple[Any, ...]]:
    """``n`` stored rows (``seq, *COLUMNS, prev_hash, hash``) chained from the genesis hash."""
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        r = record_row(rec(seq))
        h = chain_hash(prev, seq, r)
        rows.append((seq, *r, prev, h))
        prev = h
    return rows
