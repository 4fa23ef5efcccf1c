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
import io
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


def read(text: str, source: str, timezone: tzinfo = UTC) -> Trace:
    if not text.strip():
        raise InputError(f"{source}: no call in the file")
    rows = list(csv.reader(io.StringIO(text), _dialect("\n".join(text[:65536].splitlines()[:20]))))
    columns: dict[str, int] = {name: i for i, name in enumerate(_POSITIONAL)}
    start = 0
    first = [c.strip().lower() for c in rows[0]] if rows else []
    if first and any(c in _NAMES for c in first) and not any(c.lstrip("+").isdigit() for c in first):
        columns = {}
        for i, name in enumerate(first):
            key = _NAMES.get(name)
            if key and key not in columns:
                columns[key] = i
        if "number" not in columns:
            raise InputError(f"{source}:1: header has no number column (expected one of "
                             "number, dialled, to, callee, phone)")
        start = 1
    calls: list[Call] = []
    warnings: list[str] = []
    bad = 0
    # Column positions, -1 when absent: read inline below, a million lines a second is the order of magnitude.
    ti, ni, pi, ci, ei = (columns.get(k, -1) for k in ("time", "number", "campaign", "caller_id", "event"))
    times = TimeReader(timezone)
    append = calls.append
    anonymous = ANONYMOUS
    call_event = Event.CALL

    def col(row: list[str], i: int) -> str:
        return row[i].strip() if 0 <= i < len(row) else ""

    make = Call._make  # every field given: a NamedTuple's own __new__ (defaults, keywords) is slower
    for lineno, row in enumerate(rows[start:], start=start + 1):
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
        try:
            at = times(row[ti]) if 0 <= ti < n else None
        except ValueError:
            raise InputError(f"{source}:{lineno}: time {col(row, ti)!r} cannot be read: expected ISO-8601 "
                             "(e.g. 2026-11-24T10:30:00+01:00, 2026-11-24T09:30:00Z, or without an offset in "
                             "--timezone) or UNIX seconds") from None
        event = _EVENTS.get(col(row, ei).lower()) if ei >= 0 else call_event
        if event is None:
            raise InputError(f"{source}:{lineno}: event {col(row, ei)!r}: expected call, refusal or optout")
        caller = row[ci].strip() if 0 <= ci < n else ""
        append(make((number, row[pi].strip() if 0 <= pi < n else "", "" if caller.lower() in anonymous else caller, at,
                     "", f"line {lineno}", event)))
    if bad > 5:
        warnings.append(f"{source}: {bad} lines skipped in all")
    if not calls:
        raise InputError(f"{source}: no readable call line (expected time,number,campaign,caller_id"
                         f"{'; ' + warnings[0] if warnings else ''})")
    return Trace(tuple(calls), "csv", {"lines": len(rows), "skipped": bad}, tuple(warnings))
