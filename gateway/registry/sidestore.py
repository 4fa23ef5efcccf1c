"""The registry side store: when, and on what evidence, a consent or an opt-out was recorded.

A bitmap says *whether* a number consented; the law (RULES.md, consent regime) asks the
professional to *prove* it: the date, the source, and any revocation. Those facts live
here, one SQLite file, so that ``dnc-gateway registry proof NUMBER`` can print them for
any number months later, and so that consent dates can feed
``Registries.consent_dates`` (a new consent given after a refusal lifts the refusal).

Entries are appended, never updated in place, except to mark a revocation: the history of
a number is the proof.
"""

from __future__ import annotations

import csv
import enum
import io
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from gateway.numbers import Normaliser

__all__ = ["DEFAULT_NAME", "Entry", "EntryKind", "ImportReport", "SideStore", "consent_dates", "default_path"]

DEFAULT_NAME = "registry-side.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    list TEXT NOT NULL,
    key INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('consent', 'optout')),
    given_on TEXT NOT NULL,
    source TEXT NOT NULL,
    evidence TEXT NOT NULL DEFAULT '',
    recorded_at TEXT NOT NULL,
    revoked_on TEXT,
    revoked_source TEXT
);
CREATE INDEX IF NOT EXISTS entries_key ON entries (key);
CREATE INDEX IF NOT EXISTS entries_list ON entries (list, kind);
"""


class EntryKind(enum.StrEnum):
    CONSENT = "consent"
    OPTOUT = "optout"


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    list: str
    key: int
    kind: EntryKind
    given_on: date
    source: str
    evidence: str
    recorded_at: datetime
    revoked_on: date | None = None
    revoked_source: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_on is None

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "list": self.list, "number": f"+{self.key}", "kind": str(self.kind),
                "given_on": self.given_on.isoformat(), "source": self.source, "evidence": self.evidence,
                "recorded_at": self.recorded_at.isoformat(timespec="seconds"),
                "revoked_on": self.revoked_on.isoformat() if self.revoked_on else None,
                "revoked_source": self.revoked_source}


@dataclass(slots=True)
class ImportReport:
    lines: int = 0
    imported: int = 0
    bad: list[tuple[int, str]] | None = None

    @property
    def bad_count(self) -> int:
        return len(self.bad or ())

    def add_bad(self, line_no: int, why: str) -> None:
        if self.bad is None:
            self.bad = []
        self.bad.append((line_no, why))


def default_path(data_dir: Path) -> Path:
    return data_dir / DEFAULT_NAME


class SideStore:
    """One SQLite file; short transactions, so the CLI and a running gateway can share it (WAL)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> SideStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, list_name: str, key: int, kind: EntryKind, given_on: date, source: str, evidence: str = "",
            *, now: datetime | None = None) -> int:
        if not key:
            raise ValueError("an entry needs a valid number")
        if not source.strip():
            raise ValueError("an entry needs its source (web form, call recording, paper form, …)")
        with self.db:
            cur = self.db.execute(
                "INSERT INTO entries (list, key, kind, given_on, source, evidence, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (list_name, key, str(kind), given_on.isoformat(), source, evidence,
                 (now or datetime.now(UTC)).isoformat(timespec="seconds")))
        return int(cur.lastrowid or 0)

    def revoke(self, list_name: str, key: int, on: date, source: str) -> int:
        """Mark the active entries of ``key`` in ``list_name`` revoked; returns how many were."""
        with self.db:
            cur = self.db.execute(
                "UPDATE entries SET revoked_on = ?, revoked_source = ? "
                "WHERE list = ? AND key = ? AND revoked_on IS NULL",
                (on.isoformat(), source, list_name, key))
        return cur.rowcount

    def entries(self, key: int) -> list[Entry]:
        rows = self.db.execute(
            "SELECT id, list, key, kind, given_on, source, evidence, recorded_at, revoked_on, revoked_source "
            "FROM entries WHERE key = ? ORDER BY given_on, id", (key,))
        return [_entry(r) for r in rows]

    def consent_dates(self, list_name: str) -> dict[int, date]:
        """Latest unrevoked consent date per number of ``list_name``."""
        out: dict[int, date] = {}
        rows = self.db.execute(
            "SELECT key, MAX(given_on) FROM entries WHERE list = ? AND kind = 'consent' AND revoked_on IS NULL "
            "GROUP BY key", (list_name,))
        for key, given in rows:
            out[int(key)] = date.fromisoformat(given)
        return out

    def active_keys(self, list_name: str, kind: EntryKind) -> Iterator[int]:
        """Numbers with an unrevoked entry: what a list built from this store holds."""
        rows = self.db.execute("SELECT DISTINCT key FROM entries WHERE list = ? AND kind = ? AND revoked_on IS NULL",
                               (list_name, str(kind)))
        return (int(k) for (k,) in rows)

    def import_csv(self, text: str, list_name: str, kind: EntryKind, normaliser: Normaliser,
                   default_source: str = "") -> ImportReport:
        """Rows ``number;date[;source[;evidence]]`` (header optional, ``,`` or ``;``); bad rows reported, not fatal."""
        report = ImportReport()
        delimiter = ";" if text.count(";") >= text.count(",") else ","
        rows: list[tuple[str, int, str, str, str, str, str]] = []
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for line_no, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            number = normaliser.parse(row[0].strip())
            if line_no == 1 and not number.key and len(row) > 1:
                try:
                    date.fromisoformat(row[1].strip())
                except ValueError:
                    continue  # a header
            report.lines += 1
            if not number.key:
                report.add_bad(line_no, f"not a phone number: {row[0][:20]!r}")
                continue
            if len(row) < 2:
                report.add_bad(line_no, "no date")
                continue
            try:
                given = date.fromisoformat(row[1].strip()[:10])
            except ValueError:
                report.add_bad(line_no, f"not a date: {row[1][:20]!r}")
                continue
            source = (row[2].strip() if len(row) > 2 else "") or default_source
            if not source:
                report.add_bad(line_no, "no source (give one per row, or --source)")
                continue
            evidence = row[3].strip() if len(row) > 3 else ""
            rows.append((list_name, number.key, str(kind), given.isoformat(), source, evidence, now))
        with self.db:
            self.db.executemany(
                "INSERT INTO entries (list, key, kind, given_on, source, evidence, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        report.imported = len(rows)
        return report


def _entry(r: tuple[object, ...]) -> Entry:
    (id_, list_name, key, kind, given, source, evidence, recorded, revoked, revoked_source) = r
    return Entry(int(id_), str(list_name), int(key), EntryKind(str(kind)),  # type: ignore[call-overload]
                 date.fromisoformat(str(given)), str(source), str(evidence),
                 datetime.fromisoformat(str(recorded)),
                 date.fromisoformat(str(revoked)) if revoked else None,
                 str(revoked_source) if revoked_source is not None else None)


def consent_dates(path: Path, lists: Iterable[str]) -> Mapping[str, Mapping[int, date]]:
    """For ``Registries.consent_dates``: the holder calls this at load; no store file, no dates."""
    if not path.is_file():
        return {}
    with SideStore(path) as store:
        return {name: store.consent_dates(name) for name in lists}
