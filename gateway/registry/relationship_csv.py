"""Dated business relationships: the ``relationship-csv`` list format (``kind = "customers" | "inquiries"``).

A CSV, comma or semicolon, whose header names its columns, in any order::

    number,date,source
    +12025550143,2025-08-15,order 10231
    +12025550178,2026-11-02,web inquiry form

``date`` is the last purchase or transaction (a customers list) or the inquiry (an inquiries list): the
established business relationship exempts from the national list for the pack's window in calendar months
after it (US 18 and 3, Canada 18 and 6). It is an ISO-8601 date, or a date-time with its UTC offset (its day
counts). A row with no date is loaded and counted: the campaign's ``undated_relationship`` decides what it is
worth. Several rows of one number: the latest date counts (a dated row wins over an undated one).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from pyroaring import BitMap64, FrozenBitMap64

from gateway.numbers import Normaliser
from gateway.registry.consent_csv import LineReport, header_names, numbered_rows, when

__all__ = ["COLUMNS", "RelationshipFile", "looks_like", "parse", "read"]

COLUMNS = ("number", "date", "source")


@dataclass(frozen=True, slots=True)
class RelationshipFile:
    members: FrozenBitMap64  # every number with a row
    dates: Mapping[int, date]  # number -> its latest dated row's day
    undated: int = 0  # numbers with rows but no date at all


def looks_like(header: bytes) -> bool:
    """A first line naming ``number`` and ``date`` and no consent-csv column (for ``format = "auto"``)."""
    names = header_names(header)
    return {"number", "date"} <= names and "collected_at" not in names


def _day(text: str) -> date | None:
    """The day of a date, or of a date-time with its offset (the consent file's reading)."""
    moment = when(text)
    return moment.date() if isinstance(moment, datetime) else moment


def parse(text: str, normaliser: Normaliser, report: LineReport) -> RelationshipFile:
    """Read a relationship file's text; bad rows go to ``report`` with their line number, the rest is loaded."""
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")),
                     None)
    if header_at is None:
        return RelationshipFile(FrozenBitMap64(), {})
    head = lines[header_at]
    delimiter = ";" if head.count(";") > head.count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines[header_at:])), delimiter=delimiter)
    names = [c.strip().lower() for c in next(reader)]
    if "number" not in names or "date" not in names:
        raise ValueError(f"line {header_at + 1}: the header must name 'number' and 'date' (columns: "
                         f"{', '.join(COLUMNS)})")
    members = BitMap64()
    dates: dict[int, date] = {}
    for line_no, raw, cells, number in numbered_rows(reader, names, header_at, delimiter, normaliser, report):
        try:
            day = _day(cells.get("date", ""))
        except ValueError as e:
            report.add_bad(line_no, f"date: {e}", raw)
            continue
        report.accepted += 1
        key = number.key
        members.add(key)
        if day is not None:
            had = dates.get(key)
            if had is None or day > had:
                dates[key] = day
    members.run_optimize()
    undated = len(members) - len(dates)
    return RelationshipFile(FrozenBitMap64(members), dates, undated)


def read(path: Path, normaliser: Normaliser, report: LineReport) -> RelationshipFile:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 ({e})") from None
    return parse(text, normaliser, report)
