"""Consent files with their proof: the ``consent-csv`` list format (issue 13).

A CSV, comma or semicolon, whose header names its columns, in any order::

    number;collected_at;source;evidence;wording_version;channel;revoked_at;revoked_channel
    0612345678;2026-09-01T10:12:00+02:00;web form;sha256:9f2c…;v3;web;;
    0698765432;2026-08-20;call;rec-2231;v2;phone;2026-10-02;letter

Only ``number`` is required. ``collected_at`` and ``revoked_at`` are ISO-8601 dates, or date-times with their
UTC offset (a date-time without one is a bad row: its day would depend on the reader's zone). Columns the
gateway does not know are kept with the row, as the proof's ``extra``.

One read gives both what decides and what proves: the numbers with a consent in force (the list's bitmap),
their collection dates, the withdrawals the file records, and every row for the side store. A row with no date
is loaded (``undated_consent`` decides what it is worth) and counted; a row dated in the future is loaded and
reported, for ``registry build`` and the reload log to say so.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

from pyroaring import BitMap64, FrozenBitMap64

from gateway.numbers import Normaliser, Number
from gateway.registry.sidestore import ConsentDate, FileRow, later

__all__ = ["COLUMNS", "ConsentFile", "looks_like", "parse", "read"]

COLUMNS = ("number", "collected_at", "source", "evidence", "wording_version", "channel", "revoked_at",
           "revoked_channel")
_KNOWN = frozenset(COLUMNS)
MAX_FUTURE_SAMPLES = 50


class LineReport(Protocol):
    """What a load reports (``loaders.LoadReport``): lines seen, numbers accepted, bad lines."""

    lines: int
    accepted: int

    def add_bad(self, line_no: int, why: str, raw: bytes = b"") -> None: ...


def numbered_rows(reader: Iterator[list[str]], names: list[str], header_at: int, delimiter: str,
                  normaliser: Normaliser, report: LineReport) -> Iterator[tuple[int, bytes, dict[str, str], Number]]:
    """The data rows under a CSV header (consent and relationship files): blank and ``#`` lines skipped, each other
    line counted in ``report``; a row with more fields than the header names, or with no phone number, is a bad
    line there. Yields (line number, raw line, cells by column name, the number)."""
    for offset, values in enumerate(reader, 1):
        line_no = header_at + 1 + offset
        if not values or not "".join(values).strip() or values[0].lstrip().startswith("#"):
            continue
        report.lines += 1
        raw = delimiter.join(values).encode()
        if len(values) > len(names):
            report.add_bad(line_no, f"{len(values)} fields, the header names {len(names)}", raw)
            continue
        cells = dict(zip(names, (v.strip() for v in values), strict=False))
        number = normaliser.parse(cells.get("number", ""))
        if not number.key:
            report.add_bad(line_no, "not a phone number", raw)
            continue
        yield line_no, raw, cells, number


@dataclass(frozen=True, slots=True)
class ConsentFile:
    members: FrozenBitMap64  # numbers with a consent the file does not revoke
    rows: tuple[FileRow, ...]  # every good row, for the side store
    dates: Mapping[int, ConsentDate]  # number -> latest collection of its consents in force (dated ones)
    withdrawals: Mapping[int, ConsentDate]  # number -> latest revocation the file records
    undated: int = 0  # rows in force with no collection date
    future: tuple[tuple[int, str], ...] = field(default=())  # (line, date) of rows collected after today


def header_names(header: bytes) -> set[str]:
    """The column names a CSV's first line gives (either delimiter, quotes and case ignored)."""
    text = header.decode("utf-8", "replace").lower()
    return {c.strip().strip('"') for c in text.replace(";", ",").split(",")}


def looks_like(header: bytes) -> bool:
    """A first line that names ``number`` and another consent-csv column (for ``format = "auto"``)."""
    names = header_names(header)
    return "number" in names and len(names & _KNOWN) >= 2


def when(text: str) -> ConsentDate | None:
    """'' -> None; a date; a date-time with its offset. Raises ValueError on anything else."""
    text = text.strip()
    if not text:
        return None
    if len(text) == 10:
        return date.fromisoformat(text)
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise ValueError("a date-time needs its UTC offset (…+02:00 or …Z)")
    return t


def _future(d: ConsentDate, now: datetime) -> bool:
    if isinstance(d, datetime):
        return d > now
    return d > (now + timedelta(days=1)).date()  # a day ahead of UTC: the date may be a far-east zone's today


def parse(text: str, normaliser: Normaliser, report: LineReport, *, now: datetime | None = None) -> ConsentFile:
    """Read a consent file's text; bad rows go to ``report`` with their line number, the rest is loaded."""
    now = now or datetime.now(UTC)
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")),
                     None)
    if header_at is None:
        return ConsentFile(FrozenBitMap64(), (), {}, {})
    head = lines[header_at]
    delimiter = ";" if head.count(";") >= head.count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines[header_at:])), delimiter=delimiter)
    names = [c.strip().lower() for c in next(reader)]
    if "number" not in names:
        raise ValueError(f"line {header_at + 1}: the header names no 'number' column (columns: "
                         f"{', '.join(COLUMNS)}; only number is required)")
    members = BitMap64()
    rows: list[FileRow] = []
    dates: dict[int, ConsentDate] = {}
    withdrawals: dict[int, ConsentDate] = {}
    undated = 0
    future: list[tuple[int, str]] = []
    for line_no, raw, cells, number in numbered_rows(reader, names, header_at, delimiter, normaliser, report):
        try:
            collected = when(cells.get("collected_at", ""))
            revoked = when(cells.get("revoked_at", ""))
        except ValueError as e:
            report.add_bad(line_no, f"collected_at or revoked_at: {e}", raw)
            continue
        key = number.key
        report.accepted += 1
        extra = {k: v for k, v in cells.items() if k not in _KNOWN and k and v}
        rows.append(FileRow(key, collected, cells.get("source", ""), cells.get("evidence", ""),
                            cells.get("wording_version", ""), cells.get("channel", ""), revoked,
                            cells.get("revoked_channel", ""), extra))
        if collected is not None and _future(collected, now) and len(future) < MAX_FUTURE_SAMPLES:
            future.append((line_no, collected.isoformat()))
        if revoked is not None:
            prev = withdrawals.get(key)
            if prev is None or later(revoked, prev):
                withdrawals[key] = revoked
            continue
        members.add(key)
        if collected is None:
            undated += 1
            continue
        had = dates.get(key)
        if had is None or later(collected, had):
            dates[key] = collected
    members.run_optimize()
    return ConsentFile(FrozenBitMap64(members), tuple(rows), dates, withdrawals, undated, tuple(future))


def read(path: Path, normaliser: Normaliser, report: LineReport, *, now: datetime | None = None) -> ConsentFile:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 ({e})") from None
    return parse(text, normaliser, report, now=now)
