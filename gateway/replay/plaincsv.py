"""Plain CSV call lists: ``time,number,campaign,caller_id`` (comma, semicolon or tab).

A header line is optional; when present its names choose the columns (``time``/``at``/
``timestamp``, ``number``/``dialled``/``to``, ``campaign``, ``caller_id``/``callerid``/``from``,
``event``), so a file exported from a dialler with extra columns reads as is. Without one the
columns are positional. Time is ISO-8601 with an offset or ``Z``, ISO-8601 without one (read in
``timezone``: ``replay --timezone``, by default the config's ``[gateway] timezone``; an offline replay
decides at that instant, so the zone changes verdicts), or UNIX seconds; it may be empty. A time that
cannot be read stops the reading with its line number: a skipped line would silently change the caps
and cooldowns an offline replay builds up.

``event`` (header only): ``call`` (or empty), ``refusal`` or ``optout`` — what the callee said at that
time, as the gateway's ``refusal``/``optout`` routes record it; an offline replay builds the history from it.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import operator
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, tzinfo

from gateway.replay.trace import ANONYMOUS, Call, Event, InputError, Trace

__all__ = ["TimeReader", "parse_time", "read"]

_NAMES = {
    "time": "time", "at": "time", "timestamp": "time", "date": "time", "datetime": "time",
    "number": "number", "dialled": "number", "dialed": "number", "to": "number", "callee": "number",
    "phone": "number", "telephone": "number", "exten": "number",
    "campaign": "campaign",
    "caller_id": "caller_id", "callerid": "caller_id", "caller id": "caller_id", "from": "caller_id",
    "caller": "caller_id", "cli": "caller_id",
    "event": "event",
}
_POSITIONAL = ("time", "number", "campaign", "caller_id")


def expected_columns() -> str:
    """The header names replay reads, grouped: what an error about a header says it expected."""
    groups: dict[str, list[str]] = {}
    for name, key in _NAMES.items():
        groups.setdefault(key, []).append(name)
    return "; ".join(f"{key}" + (f" (or {', '.join(n for n in names if n != key)})" if len(names) > 1 else "")
                     for key, names in groups.items())


_EVENTS = {e.value: e for e in Event} | {"": Event.CALL, "opt-out": Event.OPTOUT, "refused": Event.REFUSAL}


def parse_time(text: str, timezone: tzinfo = UTC) -> float | None:
    """UNIX seconds of an ISO-8601 date-time or a number of seconds; None when empty.

    An ISO time without an offset is read in ``timezone`` (a DST gap or overlap takes the earlier offset,
    ``fold=0``). Raises ValueError when the text is neither.
    """
    t = text.strip()
    if not t:
        return None
    # Tell the two forms apart before trying either: a failed float() costs an exception on every ISO line.
    if t[0] in "+-" or t.replace(".", "", 1).isdigit():
        return float(t)
    at = datetime.fromisoformat(t)  # Python 3.11 reads "Z" and every ISO-8601 form people write
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone)
    return at.timestamp()


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        return csv.excel


class TimeReader:
    """:func:`parse_time` for many lines: a time written ``YYYY-MM-DD HH:MM:SS`` without an offset (what diallers
    export) costs a zone conversion once per minute, not per line (a minute has one UTC offset: every time zone
    change happens on a whole minute)."""

    def __init__(self, timezone: tzinfo = UTC) -> None:
        self.timezone = timezone
        self._minutes: dict[str, float] = {}

    def __call__(self, text: str) -> float | None:
        base = self._minutes.get(text[:16])  # the usual line: one look-up, the seconds added
        if base is not None and len(text) == 19 and text[16] == ":":
            seconds = text[17:]
            if seconds.isdigit() and seconds < "60":
                return base + int(seconds)
        t = text.strip()
        if len(t) == 19 and t[16] == ":" and t[17:].isdigit() and t[17:] < "60":
            minutes = self._minutes
            if len(minutes) > 100_000:
                minutes.clear()
            minute = parse_time(t[:17] + "00", self.timezone)
            assert minute is not None
            minutes[t[:16]] = minute
            return minute + int(t[17:])
        return parse_time(t, self.timezone)


def _lines(text: str, dialect: type[csv.Dialect] | csv.Dialect) -> list[str] | None:
    """The file's lines when splitting each on the delimiter gives the rows ``csv.reader`` would: no quote,
    escape, lone carriage return or NUL (the usual export); None otherwise."""
    delimiter, quote, escape = dialect.delimiter, dialect.quotechar, dialect.escapechar
    plain = text.replace("\r\n", "\n")
    if (len(delimiter) != 1 or (quote and quote in plain) or (escape and escape in plain) or "\r" in plain
            or "\0" in plain):
        return None
    lines = plain.split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last line ends no row
    return lines


def _rows(text: str, dialect: type[csv.Dialect] | csv.Dialect, lines: list[str] | None) -> Iterator[list[str]]:
    """The file's rows, as ``csv.reader`` reads them, one at a time (a list of a million rows held at once
    cost more than reading them: its memory is allocated, then walked again).

    Plain lines (:func:`_lines`) split on the delimiter are the rows ``csv.reader`` gives (checked in
    tests/replay/test_plaincsv.py) at twice the speed: the reader's state machine walks every character in
    turn where ``str.split`` searches for one."""
    if lines is None:
        yield from csv.reader(io.StringIO(text), dialect)
        return
    delimiter = dialect.delimiter
    for line in lines:
        yield line.split(delimiter) if line else []


def _columns(lines: list[str], delimiter: str, start: int, width: int) -> list[list[str]] | None:
    """The columns of a plain file whose every line after the header has ``width`` fields, no comment and no
    blank line (what a dialler exports): then each column is read as a whole below with C-level ``map`` and
    ``zip`` rather than a Python loop over lines. None otherwise (the line loop reads it)."""
    body = lines[start:]
    if not body or width < 1 or any(line.lstrip().startswith("#") for line in body if "#" in line):
        return None
    # Every line with width - 1 delimiters: then the lines joined and split once are the fields in rows of
    # ``width``, without a list per line (a million of them to build and free).
    if set(map(operator.methodcaller("count", delimiter), body)) != {width - 1}:
        return None
    fields = delimiter.join(body).split(delimiter)
    return [fields[k::width] for k in range(width)]


def read(text: str, source: str, timezone: tzinfo = UTC) -> Trace:
    if not text.strip():
        raise InputError(f"{source}: no call in the file")
    dialect = _dialect("\n".join(text[:65536].splitlines()[:20]))
    lines = _lines(text, dialect)
    rows = _rows(text, dialect, lines)
    columns: dict[str, int] = {name: i for i, name in enumerate(_POSITIONAL)}
    start = 0
    head = next(rows, None)
    first = [c.strip().lower() for c in head] if head else []
    header_warnings: list[str] = []
    if first and any(c in _NAMES for c in first) and not any(c.lstrip("+").isdigit() for c in first):
        columns = {}
        for i, name in enumerate(first):
            key = _NAMES.get(name)
            if key and key not in columns:
                columns[key] = i
        if "number" not in columns:
            raise InputError(f"{source}:1: header has no number column (expected one of "
                             "number, dialled, to, callee, phone)")
        unknown = [name for name in first if name and name not in _NAMES]
        if unknown:
            # A column under a name replay does not know is not read: say so, or a "called_at" column would only
            # show up later as "calls have no time".
            header_warnings.append(f"{source}:1: column{'s' if len(unknown) > 1 else ''} "
                                   f"{', '.join(repr(u) for u in unknown)} not read: the header names replay reads "
                                   f"are {expected_columns()}")
        start = 1
    elif first and all(c and not any(ch.isdigit() for ch in c) for c in first):
        # Every cell a word: a header, but with no name replay knows. Read as a call, its first cell would be a
        # time that cannot be read: name the columns instead.
        raise InputError(f"{source}:1: header {', '.join(repr(c) for c in first)} names no column replay reads: "
                         f"expected {expected_columns()}")
    ti, ni, pi, ci, ei = (columns.get(k, -1) for k in ("time", "number", "campaign", "caller_id", "event"))
    if lines is not None and ei < 0 and head:
        fast = _fast(lines, dialect.delimiter, start, len(head), (ti, ni, pi, ci), timezone)
        if fast is not None:
            return Trace(tuple(fast), "csv", {"lines": len(lines), "skipped": 0}, tuple(header_warnings))
    if head is not None and start == 0:
        rows = itertools.chain((head,), rows)
    calls: list[Call] = []
    warnings: list[str] = header_warnings
    bad = 0
    # Column positions, -1 when absent: read inline below, a million lines a second is the order of magnitude.
    times = TimeReader(timezone)
    append = calls.append
    anonymous = ANONYMOUS
    call_event = Event.CALL
    # One string object per distinct campaign and caller ID rather than one per line: less memory, and each is
    # hashed once (a str caches its hash) where the offline decider looks calls up by them.
    strings: dict[str, str] = {}
    last_time, last_at = "", None  # a sorted trace has a few calls a second: the same time text in a row

    def col(row: list[str], i: int) -> str:
        return row[i].strip() if 0 <= i < len(row) else ""

    make = Call._make  # every field given: a NamedTuple's own __new__ (defaults, keywords) is slower
    lineno = start
    for lineno, row in enumerate(rows, start=start + 1):
        n = len(row)
        # The columns indexed inline (col() for the rare ones): a million lines a second is the order of magnitude.
        number = row[ni].strip() if ni < n else ""
        if not number or ("#" in row[0] and row[0].lstrip()[:1] == "#"):
            if not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue  # a blank line or a comment
            bad += 1
            if bad <= 5:
                warnings.append(f"{source}:{lineno}: no number: line skipped")
            continue
        if 0 <= ti < n:
            text_at = row[ti]
            if text_at != last_time:
                try:
                    last_at = times(text_at)
                except ValueError:
                    # The example in the zone a time without offset is read in: the offset a person there types.
                    example = datetime(2026, 11, 24, 10, 30, tzinfo=timezone).isoformat()
                    raise InputError(f"{source}:{lineno}: time {col(row, ti)!r} cannot be read: expected "
                                     f"ISO-8601 (e.g. {example}, 2026-11-24T09:30:00Z, or without an offset, read "
                                     f"in {timezone}) or UNIX seconds") from None
                last_time = text_at
            at = last_at
        else:
            at = None
        event = _EVENTS.get(col(row, ei).lower()) if ei >= 0 else call_event
        if event is None:
            raise InputError(f"{source}:{lineno}: event {col(row, ei)!r}: expected call, refusal or optout")
        caller = row[ci].strip() if 0 <= ci < n else ""
        caller = "" if caller.lower() in anonymous else strings.setdefault(caller, caller)
        campaign = row[pi].strip() if 0 <= pi < n else ""
        append(make((number, strings.setdefault(campaign, campaign), caller, at, "", f"line {lineno}", event)))
    if bad > 5:
        warnings.append(f"{source}: {bad} lines skipped in all")
    if not calls:
        raise InputError(f"{source}: no readable call line (expected time,number,campaign,caller_id"
                         f"{'; ' + warnings[0] if warnings else ''})")
    return Trace(tuple(calls), "csv", {"lines": lineno, "skipped": bad}, tuple(warnings))


def _fast(lines: list[str], delimiter: str, start: int, width: int, at: tuple[int, int, int, int],
          timezone: tzinfo) -> list[Call] | None:
    """The calls of a plain file read column by column (see :func:`_columns`), or None when it is not one, a
    number is empty or a time cannot be read (the line loop reads it and says which line).

    Each distinct time, campaign and caller ID is read once (a trace repeats them: a few calls a second, one
    campaign, a few caller IDs), then every column is mapped through those in C: the line loop cost a
    microsecond a line in bytecode, more than deciding the call."""
    ti, ni, pi, ci = at
    if ni >= width:
        return None
    cols = _columns(lines, delimiter, start, width)
    if cols is None:
        return None
    numbers = list(map(str.strip, cols[ni]))
    if "" in numbers:
        return None
    count = len(numbers)
    ats: Iterable[float | None]
    if 0 <= ti < width:
        read_time = TimeReader(timezone)
        try:
            seen = {t: read_time(t) for t in set(cols[ti])}
        except ValueError:
            return None
        ats = map(seen.__getitem__, cols[ti])
    else:
        ats = itertools.repeat(None, count)
    campaigns: Iterable[str]
    if 0 <= pi < width:
        names = {c: c.strip() for c in set(cols[pi])}
        campaigns = map(names.__getitem__, cols[pi])
    else:
        campaigns = itertools.repeat("", count)
    callers: Iterable[str]
    if 0 <= ci < width:
        ids = {c: "" if c.strip().lower() in ANONYMOUS else c.strip() for c in set(cols[ci])}
        callers = map(ids.__getitem__, cols[ci])
    else:
        callers = itertools.repeat("", count)
    origins = map("line {}".format, range(start + 1, start + 1 + count))
    # tuple.__new__(Call, fields) is what Call._make does, without a Python frame per call.
    make = functools.partial(tuple.__new__, Call)
    return list(map(make, zip(numbers, campaigns, callers, ats, itertools.repeat("", count), origins,
                              itertools.repeat(Event.CALL, count), strict=True)))
