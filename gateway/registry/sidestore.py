"""The registry side store: when, how and on what evidence a consent or an opt-out was recorded.

A bitmap says *whether* a number consented; the law (L223-1 as amended by loi 2025-594 art. 13) asks the
professional to *prove* it: the date, the source, the wording shown, the channel, and any withdrawal. Those facts
live here, one SQLite file, so that ``dnc-gateway registry proof NUMBER`` (and the ``proof`` dossier) can print
them for any number years later.

The side store also *decides* (issue 13, "one source of truth"): what is recorded here is applied on top of the
list files by the registry holder (:meth:`SideStore.overlay`):

- a consent recorded for list X (``registry entries add``) adds the number to X with its collection date;
- an opt-out recorded for an internal_dnc list X adds the number to X;
- any revoked consent is a withdrawal of consent, for every consent list (a person withdraws consent from the
  professional, not from one file): a consent collected after it counts again, one collected before does not;
- rows of a ``consent-csv`` list file are copied here on every load (origin ``file``: the file itself decides
  their membership; their revocations are withdrawals like any other);
- consents recorded at a call or over the API (origin ``call``/``api``, list ``*``) are proof only here: the
  decision reads them from the state store, which every gateway shares (Redis) or this one holds (embedded).

Entries are appended, never updated in place, except to mark a revocation: the history of a number is the proof.
They are purged ``consent_proof_years`` after the consent or opt-out ends (:meth:`SideStore.purge_after`).
"""

from __future__ import annotations

import contextlib
import csv
import enum
import hashlib
import io
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from gateway.numbers import Normaliser
from gateway.private import private_file, restrict

__all__ = ["DEFAULT_NAME", "LIVE_LIST", "ConsentDate", "Entry", "EntryKind", "EntryOrigin", "FileRow",
           "ImportReport", "Overlay", "SideStore", "consent_dates", "day_of", "default_path", "later"]

DEFAULT_NAME = "registry-side.db"
LIVE_LIST = "*"  # the list of consents recorded at a call or over the API: given to the professional, every list
# France's proof keeping and consent lifetime (policy/france.py, with their source), the defaults of a side store
# opened without a config; tests/policy/test_france.py checks they agree with the pack.
PROOF_YEARS = 3
MAX_AGE_DAYS = 365

ConsentDate = date | datetime  # a collection or withdrawal: a day, or an instant with its offset

_COLUMNS = ("id, list, key, kind, given_on, source, evidence, recorded_at, revoked_on, revoked_source, "
            "collected_at, wording_version, channel, revoked_at, revoked_channel, extra, origin")

_TABLE = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    list TEXT NOT NULL,
    key INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('consent', 'optout')),
    given_on TEXT,                       -- YYYY-MM-DD; NULL: no known date (not proof)
    source TEXT NOT NULL,
    evidence TEXT NOT NULL DEFAULT '',
    recorded_at TEXT NOT NULL,
    revoked_on TEXT,
    revoked_source TEXT,
    collected_at TEXT,                   -- ISO-8601 date-time with offset, when known
    wording_version TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL DEFAULT '',
    revoked_at TEXT,                     -- ISO-8601 date-time with offset of the revocation, when known
    revoked_channel TEXT,
    extra TEXT NOT NULL DEFAULT '{}',    -- JSON object: a consent file's columns the gateway does not know
    origin TEXT NOT NULL DEFAULT 'cli',  -- cli | file | call | api
    fingerprint TEXT                     -- a file row's identity, so that a reload does not copy it twice
);
"""
_SCHEMA = _TABLE + """
CREATE INDEX IF NOT EXISTS entries_key ON entries (key);
CREATE INDEX IF NOT EXISTS entries_list ON entries (list, kind);
"""

# Columns added by issue 13 to a store written before it (given_on also became nullable: see _migrate).
_ADDED = ("collected_at TEXT", "wording_version TEXT NOT NULL DEFAULT ''", "channel TEXT NOT NULL DEFAULT ''",
          "revoked_at TEXT", "revoked_channel TEXT", "extra TEXT NOT NULL DEFAULT '{}'",
          "origin TEXT NOT NULL DEFAULT 'cli'", "fingerprint TEXT")


class EntryKind(enum.StrEnum):
    CONSENT = "consent"  # on a customers or inquiries list: a business relationship's date (its given_on)
    OPTOUT = "optout"


class EntryOrigin(enum.StrEnum):
    """Who recorded an entry: it says which layer decides with it (see the module docstring)."""

    CLI = "cli"  # registry entries add|import: applied on top of its list
    FILE = "file"  # a consent-csv list file's row: the file decides, this is its proof
    CALL = "call"  # FastAGI route consent/refusal/optout: the state store decides
    API = "api"  # POST /api/consents: the state store decides


def day_of(d: ConsentDate) -> date:
    """The day of a date, or of an instant in its own offset."""
    return d.date() if isinstance(d, datetime) else d


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    list: str
    key: int
    kind: EntryKind
    given_on: date | None  # None: no known collection date
    source: str
    evidence: str
    recorded_at: datetime
    revoked_on: date | None = None
    revoked_source: str | None = None
    collected_at: datetime | None = None  # the instant, when the record gave one (given_on is its day)
    wording_version: str = ""
    channel: str = ""
    revoked_at: datetime | None = None
    revoked_channel: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    origin: EntryOrigin = EntryOrigin.CLI

    @property
    def active(self) -> bool:
        return self.revoked_on is None

    @property
    def collected(self) -> ConsentDate | None:
        """What the rules compare: the instant when known, else the day, else None (undated)."""
        return self.collected_at if self.collected_at is not None else self.given_on

    @property
    def withdrawn(self) -> ConsentDate | None:
        return self.revoked_at if self.revoked_at is not None else self.revoked_on

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "list": self.list, "number": f"+{self.key}", "kind": str(self.kind),
                "given_on": self.given_on.isoformat() if self.given_on else None,
                "collected_at": self.collected_at.isoformat() if self.collected_at else None,
                "source": self.source, "evidence": self.evidence, "wording_version": self.wording_version,
                "channel": self.channel, "origin": str(self.origin),
                "recorded_at": self.recorded_at.isoformat(timespec="seconds"),
                "revoked_on": self.revoked_on.isoformat() if self.revoked_on else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
                "revoked_source": self.revoked_source, "revoked_channel": self.revoked_channel,
                "extra": dict(self.extra)}


@dataclass(frozen=True, slots=True)
class FileRow:
    """One row of a consent file (``consent-csv``), as the side store keeps it."""

    key: int
    collected: ConsentDate | None
    source: str = ""
    evidence: str = ""
    wording_version: str = ""
    channel: str = ""
    revoked: ConsentDate | None = None
    revoked_channel: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def fingerprint(self, list_name: str) -> str:
        collected = self.collected.isoformat() if self.collected is not None else ""
        text = "\x1f".join((list_name, str(self.key), collected, self.source, self.evidence, self.wording_version,
                            self.channel))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Overlay:
    """What the side store adds to the lists (see the module docstring); the holder applies it."""

    members: Mapping[str, frozenset[int]] = field(default_factory=dict)  # list -> numbers its entries add
    dates: Mapping[str, Mapping[int, ConsentDate]] = field(default_factory=dict)  # consent list -> collected
    withdrawals: Mapping[int, ConsentDate] = field(default_factory=dict)  # number -> latest consent revocation


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


def _iso(d: ConsentDate | None) -> str | None:
    if d is None:
        return None
    return d.isoformat(timespec="seconds") if isinstance(d, datetime) else d.isoformat()


def later(a: ConsentDate, b: ConsentDate) -> bool:
    """``a`` after ``b``: instants compared as instants, else by day."""
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a > b
    return day_of(a) > day_of(b)


class SideStore:
    """One SQLite file; short transactions, so the CLI and a running gateway can share it (WAL).

    ``proof_years`` and ``max_age_days`` are the retention: an entry is purged ``proof_years`` after its
    consent ends (revoked, or ``max_age_days`` after collection; 0: only a revocation ends it).
    """

    def __init__(self, path: Path | str, *, proof_years: int = PROOF_YEARS, max_age_days: int = MAX_AGE_DAYS,
                 check_same_thread: bool = True) -> None:
        self.path = Path(path)
        self.proof_years = proof_years
        self.max_age_days = max_age_days
        private_file(self.path)  # numbers: 0600 whatever the umask (its -wal and -shm take its mode)
        self.db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=check_same_thread)
        self.db.execute("PRAGMA journal_mode=WAL")
        restrict(self.path)
        self._migrate()
        self.db.executescript(_SCHEMA)

    def _migrate(self) -> None:
        """A store written before issue 13: add its new columns, and let given_on be NULL (table rebuilt)."""
        cols = {str(r[1]): bool(r[3]) for r in self.db.execute("PRAGMA table_info(entries)")}
        if not cols or "origin" in cols:
            return
        with self.db:
            for decl in _ADDED:
                self.db.execute(f"ALTER TABLE entries ADD COLUMN {decl}")
            if cols.get("given_on"):  # NOT NULL: rebuild with the new schema, keeping every row and id
                self.db.execute("ALTER TABLE entries RENAME TO entries_old")
                self.db.execute("DROP INDEX IF EXISTS entries_key")
                self.db.execute("DROP INDEX IF EXISTS entries_list")
                self.db.execute(_TABLE)
                self.db.execute(f"INSERT INTO entries ({_COLUMNS}, fingerprint) "
                                f"SELECT {_COLUMNS}, fingerprint FROM entries_old")
                self.db.execute("DROP TABLE entries_old")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> SideStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def data_version(self) -> int:
        """Changes when another connection (the CLI) commits to the file: the holder's cue to re-read it."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def add(self, list_name: str, key: int, kind: EntryKind, given_on: ConsentDate | None, source: str,
            evidence: str = "", *, now: datetime | None = None, wording_version: str = "", channel: str = "",
            extra: Mapping[str, str] | None = None, origin: EntryOrigin = EntryOrigin.CLI) -> int:
        """Record an entry. ``given_on``: the collection day, or the instant (with its offset), or None."""
        if not key:
            raise ValueError("an entry needs a valid number")
        if not source.strip():
            raise ValueError("an entry needs its source (web form, call recording, paper form, …)")
        if isinstance(given_on, datetime) and given_on.tzinfo is None:
            raise ValueError("a collection time needs its UTC offset")
        with self.db:
            cur = self.db.execute(
                "INSERT INTO entries (list, key, kind, given_on, source, evidence, recorded_at, collected_at, "
                "wording_version, channel, extra, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (list_name, key, str(kind), day_of(given_on).isoformat() if given_on is not None else None,
                 source, evidence, (now or datetime.now(UTC)).isoformat(timespec="seconds"),
                 given_on.isoformat(timespec="seconds") if isinstance(given_on, datetime) else None,
                 wording_version, channel, json.dumps(dict(extra or {}), ensure_ascii=False), str(origin)))
        return int(cur.lastrowid or 0)

    def revoke(self, list_name: str | None, key: int, on: ConsentDate, source: str, *, channel: str = "",
               kind: EntryKind | None = None) -> int:
        """Mark the active entries of ``key`` in ``list_name`` (None: every list) revoked; returns how many were.

        ``on`` is the day, or the instant with its offset (a refusal at a call): a consent collected after it
        counts again. ``kind`` limits it to consents or opt-outs (None: both, as before issue 13).
        """
        where = "key = ? AND revoked_on IS NULL"
        args: list[object] = [key]
        if list_name is not None:
            where += " AND list = ?"
            args.append(list_name)
        if kind is not None:
            where += " AND kind = ?"
            args.append(str(kind))
        at = on.isoformat(timespec="seconds") if isinstance(on, datetime) else None
        with self.db:
            cur = self.db.execute(
                f"UPDATE entries SET revoked_on = ?, revoked_at = ?, revoked_source = ?, revoked_channel = ? "
                f"WHERE {where}", (day_of(on).isoformat(), at, source, channel or None, *args))
        return cur.rowcount

    def entries(self, key: int) -> list[Entry]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM entries WHERE key = ? ORDER BY given_on, id", (key,))
        return [_entry(r) for r in rows]

    def consent_dates(self, list_name: str) -> dict[int, date]:
        """Latest unrevoked dated consent day per number of ``list_name``."""
        out: dict[int, date] = {}
        rows = self.db.execute(
            "SELECT key, MAX(given_on) FROM entries WHERE list = ? AND kind = 'consent' AND revoked_on IS NULL "
            "AND given_on IS NOT NULL GROUP BY key", (list_name,))
        for key, given in rows:
            out[int(key)] = date.fromisoformat(given)
        return out

    def active_keys(self, list_name: str, kind: EntryKind) -> Iterator[int]:
        """Numbers with an unrevoked entry: what a list built from this store holds."""
        rows = self.db.execute("SELECT DISTINCT key FROM entries WHERE list = ? AND kind = ? AND revoked_on IS NULL",
                               (list_name, str(kind)))
        return (int(k) for (k,) in rows)

    def overlay(self, consent_lists: Iterable[str], optout_lists: Iterable[str],
                relationship_lists: Iterable[str] = ()) -> Overlay:
        """What the entries add to the lists, and every withdrawal of consent (see the module docstring).

        An undated consent added by an entry is a member without a date; a dated one wins over it. An entry on
        a customers or inquiries list (``relationship_lists``; stored as kind ``consent``, its ``given_on`` the
        last purchase or the inquiry) adds its number with its date likewise, and its revocation withdraws no
        consent.
        """
        consent_lists, optout_lists = set(consent_lists), set(optout_lists)
        relationship_lists = set(relationship_lists)
        members: dict[str, set[int]] = {n: set() for n in consent_lists | optout_lists | relationship_lists}
        dates: dict[str, dict[int, ConsentDate]] = {n: {} for n in consent_lists | relationship_lists}
        withdrawals: dict[int, ConsentDate] = {}
        rows = self.db.execute(
            "SELECT list, key, kind, given_on, collected_at, revoked_on, revoked_at, origin FROM entries "
            "WHERE revoked_on IS NOT NULL AND kind = 'consent' "
            "OR revoked_on IS NULL AND origin = 'cli' AND list IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(members)),))
        for list_name, key, kind, given, collected, revoked_on, revoked_at, _origin in rows:
            key = int(key)
            if revoked_on is not None:
                if list_name in relationship_lists:
                    continue  # a relationship ended: the number leaves that list, no consent is withdrawn
                ended: ConsentDate = datetime.fromisoformat(revoked_at) if revoked_at else \
                    date.fromisoformat(revoked_on)
                prev = withdrawals.get(key)
                if prev is None or later(ended, prev):
                    withdrawals[key] = ended
                continue
            if (kind == "consent") != (list_name in consent_lists or list_name in relationship_lists):
                continue  # an opt-out filed under a consent list, or the reverse: evidence, not a decision
            members[list_name].add(key)
            if kind == "consent" and given is not None:
                when: ConsentDate = datetime.fromisoformat(collected) if collected else date.fromisoformat(given)
                had = dates[list_name].get(key)
                if had is None or later(when, had):
                    dates[list_name][key] = when
        return Overlay({n: frozenset(m) for n, m in members.items() if m}, {n: d for n, d in dates.items() if d},
                       withdrawals)

    def sync_file(self, list_name: str, rows: Sequence[FileRow], *, now: datetime | None = None) -> tuple[int, int]:
        """Copy a consent file's rows (origin ``file``): new rows added, revocations the file now gives applied.

        A row that left the file stays (the proof is kept); returns (rows added, rows revoked).
        """
        known = {str(f): (int(i), r is not None) for f, i, r in self.db.execute(
            "SELECT fingerprint, id, revoked_on FROM entries WHERE list = ? AND origin = 'file'", (list_name,))}
        stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        inserts, revokes = [], []
        for row in rows:
            fp = row.fingerprint(list_name)
            found = known.get(fp)
            revoked = row.revoked
            rev = (day_of(revoked).isoformat() if revoked is not None else None,
                   revoked.isoformat(timespec="seconds") if isinstance(revoked, datetime) else None,
                   "consent file" if revoked is not None else None, row.revoked_channel or None)
            if found is None:
                collected = row.collected
                inserts.append((list_name, row.key, "consent", day_of(collected).isoformat() if collected else None,
                                row.source or "consent file", row.evidence, stamp, *rev,
                                collected.isoformat(timespec="seconds") if isinstance(collected, datetime) else None,
                                row.wording_version, row.channel, json.dumps(dict(row.extra), ensure_ascii=False),
                                "file", fp))
                known[fp] = (0, revoked is not None)
            elif revoked is not None and not found[1]:
                revokes.append((*rev, found[0]))
        with self.db:
            self.db.executemany(
                "INSERT INTO entries (list, key, kind, given_on, source, evidence, recorded_at, revoked_on, "
                "revoked_at, revoked_source, revoked_channel, collected_at, wording_version, channel, extra, origin, "
                "fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", inserts)
            self.db.executemany("UPDATE entries SET revoked_on = ?, revoked_at = ?, revoked_source = ?, "
                                "revoked_channel = ? WHERE id = ?", revokes)
        return len(inserts), len(revokes)

    # -- retention -------------------------------------------------------------------------------

    def ends_on(self, entry: Entry) -> date | None:
        """The day the entry stops being in force: its revocation, else its consent's expiry; None: in force
        for as long as nobody revokes it (an opt-out, an undated consent, no lifetime configured)."""
        if entry.revoked_on is not None:
            return entry.revoked_on
        if entry.kind is EntryKind.CONSENT and entry.given_on is not None and self.max_age_days:
            return entry.given_on + timedelta(days=self.max_age_days)
        return None

    def purge_after(self, entry: Entry) -> date | None:
        """The first day the entry may be purged: ``proof_years`` after it ends (None: kept while in force).

        A year is counted as a calendar year (29 Feb goes to 28 Feb): never shorter than the law asks.
        """
        ended = self.ends_on(entry)
        if ended is None:
            return None
        year = ended.year + self.proof_years
        try:
            return ended.replace(year=year) + timedelta(days=1)
        except ValueError:  # 29 Feb
            return date(year, 3, 1)

    def purge(self, today: date) -> int:
        """Delete the entries whose proof is no longer owed on ``today``; returns how many.

        ``today`` comes from the wall clock, which may have jumped: it is never taken later than the day after
        the newest entry or revocation recorded here (a clock six years ahead must not purge every proof; a
        purge delayed by a quiet period only keeps proof a little longer).
        """
        newest = self.db.execute("SELECT max(max(recorded_at), coalesce(max(revoked_at), ''), "
                                 "coalesce(max(revoked_on), '')) FROM entries").fetchone()[0]
        if newest:
            with contextlib.suppress(ValueError):
                bound = date.fromisoformat(str(newest)[:10]) + timedelta(days=1)
                if today > bound:
                    today = bound
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM entries WHERE revoked_on IS NOT NULL "
                               f"OR (kind = 'consent' AND given_on IS NOT NULL)")
        ids = [(e.id,) for e in map(_entry, rows) if (after := self.purge_after(e)) is not None and after <= today]
        with self.db:
            self.db.executemany("DELETE FROM entries WHERE id = ?", ids)
        return len(ids)

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
    (id_, list_name, key, kind, given, source, evidence, recorded, revoked, revoked_source, collected, wording,
     channel, revoked_at, revoked_channel, extra, origin) = r
    try:
        extras = json.loads(str(extra or "{}"))
    except ValueError:
        extras = {}
    return Entry(int(id_), str(list_name), int(key), EntryKind(str(kind)),  # type: ignore[call-overload]
                 date.fromisoformat(str(given)) if given else None, str(source), str(evidence),
                 datetime.fromisoformat(str(recorded)),
                 date.fromisoformat(str(revoked)) if revoked else None,
                 str(revoked_source) if revoked_source is not None else None,
                 datetime.fromisoformat(str(collected)) if collected else None, str(wording or ""), str(channel or ""),
                 datetime.fromisoformat(str(revoked_at)) if revoked_at else None,
                 str(revoked_channel) if revoked_channel is not None else None,
                 {str(k): str(v) for k, v in extras.items()} if isinstance(extras, dict) else {},
                 EntryOrigin(str(origin or "cli")))


def consent_dates(path: Path, lists: Iterable[str]) -> Mapping[str, Mapping[int, date]]:
    """For ``Registries.consent_dates``: the holder calls this at load; no store file, no dates."""
    if not path.is_file():
        return {}
    with SideStore(path) as store:
        return {name: store.consent_dates(name) for name in lists}
