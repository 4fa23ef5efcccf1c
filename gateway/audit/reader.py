"""Reading an audit database: query, export rows and verify the chain, read-only.

A reader opens the file read-only (``mode=ro``): safe while a gateway writes it (WAL readers never
block), and it never creates a database: a mistyped path is an error, not an empty, "intact" log. Being
read-only, it does not upgrade a database written before ``written_at`` existed: it reads its rows with
``written_at`` NULL, which is what the writer's migration gives them anyway.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gateway.audit.chain import (
    COLUMNS,
    GENESIS,
    STORED_COLUMNS,
    WRITTEN_AT,
    RecordCheck,
    Verification,
    check_record,
    verify_rows,
)

# Every reader yields rows as ``seq, *STORED_COLUMNS, prev_hash, hash``; a database no writer has upgraded yet
# has no written_at column, and its rows read as NULL there (v1 rows: see gateway.audit.chain).
_SELECT = f"SELECT seq, {', '.join(STORED_COLUMNS)}, prev_hash, hash FROM audit"
_SELECT_V1 = f"SELECT seq, {', '.join(COLUMNS)}, NULL AS {WRITTEN_AT}, prev_hash, hash FROM audit"


class AuditError(Exception):
    """The audit database cannot be read (missing, not an audit database)."""


def row_dict(row: Sequence[Any]) -> dict[str, Any]:
    """A stored row (``seq, *STORED_COLUMNS, prev_hash, hash``) as the JSON the API, query and export give.

    ``at``/``time`` is when the call was decided (``check --at`` may date it elsewhere), ``written_at``/
    ``written_time`` when the gateway wrote the record (None for records written before the column existed).
    """
    d: dict[str, Any] = {"seq": row[0]}
    d.update(zip(STORED_COLUMNS, row[1:-2], strict=True))
    d["would_block"] = bool(d["would_block"])
    with contextlib.suppress(ValueError):  # a tampered row: show it as it is, ``verify`` reports it
        d["lists"] = json.loads(d["lists"] or "{}")
    d["time"] = iso_time(d["at"])
    d["written_time"] = None if d[WRITTEN_AT] is None else iso_time(d[WRITTEN_AT])
    d["prev_hash"], d["hash"] = row[-2], row[-1]
    return d


def iso_time(at: float) -> str:
    """UNIX time as ISO-8601 UTC with milliseconds (``2026-11-24T09:30:00.123Z``)."""
    try:
        return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(at)


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    """The ``meta`` table (head, retention anchor, schema and chain scheme) as a dict."""
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:
        raise AuditError(f"not an audit database ({e})") from None


def _where(number: str | None, campaign: str | None, since: float | None,
           until: float | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for clause, value in (("number = ?", number), ("campaign = ?", campaign), ("at >= ?", since),
                          ("at < ?", until)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class AuditReader:
    """A read-only view of an audit database, safe while a gateway writes it (WAL readers never block)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AuditError(f"{self.path}: no such audit database")
        try:
            self.conn = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=ro", uri=True,
                                        isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise AuditError(f"{self.path}: cannot open: {e}") from None
        try:
            meta = read_meta(self.conn)
        except AuditError as e:
            self.conn.close()
            raise AuditError(f"{self.path}: {e}") from None
        if "head_seq" not in meta:
            self.conn.close()
            raise AuditError(f"{self.path}: not an audit database (no head in meta)")
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(audit)")}
        self._select = _SELECT if WRITTEN_AT in columns else _SELECT_V1

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> AuditReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rows(self, number: str | None = None, campaign: str | None = None, since: float | None = None,
             until: float | None = None, limit: int | None = None, newest_first: bool = False,
             ) -> Iterator[tuple[Any, ...]]:
        where, params = _where(number, campaign, since, until)
        sql = f"{self._select}{where} ORDER BY seq {'DESC' if newest_first else 'ASC'}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, int(limit)))
        yield from self.conn.execute(sql, params)

    def query(self, number: str | None = None, campaign: str | None = None, since: float | None = None,
              until: float | None = None, limit: int = 1000, newest_first: bool = False) -> list[dict[str, Any]]:
        return [row_dict(r) for r in self.rows(number, campaign, since, until, limit, newest_first)]

    def checked(self, number: str, since: float | None = None, until: float | None = None,
                ) -> tuple[list[tuple[tuple[Any, ...], RecordCheck]], dict[str, str]]:
        """A number's rows, oldest first, each checked against its neighbours in the chain (``check_record``), and
        the meta (head, anchor) they were checked against: one read transaction, so a gateway writing meanwhile
        changes nothing of the answer."""
        self.conn.execute("BEGIN")
        try:
            meta = read_meta(self.conn)
            anchor_seq, head_seq = int(meta.get("anchor_seq", 0)), int(meta.get("head_seq", 0))
            anchor_hash, head_hash = meta.get("anchor_hash", GENESIS), meta.get("head_hash", GENESIS)
            rows = list(self.rows(number, since=since, until=until))
            seqs = {r[0] for r in rows} | {r[0] - 1 for r in rows} | {r[0] + 1 for r in rows}
            near: dict[int, tuple[str, str]] = {}
            ordered = sorted(seqs)
            for start in range(0, len(ordered), 500):  # SQLite's parameter limit, with room
                part = ordered[start:start + 500]
                near.update((s, (p, h)) for s, p, h in self.conn.execute(
                    f"SELECT seq, prev_hash, hash FROM audit WHERE seq IN ({', '.join('?' * len(part))})", part))
        finally:
            self.conn.execute("COMMIT")
        out = []
        for row in rows:
            seq = row[0]
            before = anchor_hash if seq - 1 == anchor_seq else near[seq - 1][1] if seq - 1 in near else None
            after = head_hash if seq == head_seq else near[seq + 1][0] if seq + 1 in near else None
            out.append((tuple(row), check_record(row, before, after, anchor_seq=anchor_seq, head_seq=head_seq)))
        return out, meta

    def purges(self) -> list[dict[str, Any]]:
        """The PURGE records of the chain (what each retention purge deleted, up to which seq), oldest first."""
        return [row_dict(r) for r in self.conn.execute(f"{self._select} WHERE verdict = 'PURGE' ORDER BY seq")]

    def verify(self) -> Verification:
        # One read transaction: the head and the rows come from the same snapshot even while a gateway writes.
        self.conn.execute("BEGIN")
        try:
            meta = read_meta(self.conn)
            return verify_rows(self.conn.execute(f"{self._select} ORDER BY seq"), int(meta.get("anchor_seq", 0)),
                               meta.get("anchor_hash", GENESIS), int(meta["head_seq"]),
                               meta.get("head_hash", GENESIS))
        except (ValueError, KeyError) as e:
            return Verification(False, 0, 0, 0, "", 0, 0, f"meta table damaged: {e}")
        finally:
            self.conn.execute("COMMIT")

