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

__all__ = ["parse_time", "read"]

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


def read(text: str, source: str, timezone: tzinfo = UTC) -> Trace:
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise InputError(f"{source}: no call in the file")
    rows = list(csv.reader(io.StringIO(text), _dialect("\n".join(lines[:20]))))
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

    def col(row: list[str], key: str) -> str:
        i = columns.get(key)
        return row[i].strip() if i is not None and i < len(row) else ""

    has_event = "event" in columns
    for lineno, row in enumerate(rows[start:], start=start + 1):
        if not row or not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        number = col(row, "number")
        if not number:
            bad += 1
            if bad <= 5:
                warnings.append(f"{source}:{lineno}: no number: line skipped")
            continue
        try:
            at = parse_time(col(row, "time"), timezone)
        except ValueError:
            raise InputError(f"{source}:{lineno}: time {col(row, 'time')!r} cannot be read: expected ISO-8601 "
                             "(e.g. 2026-11-24T10:30:00+01:00, 2026-11-24T09:30:00Z, or without an offset in "
                             "--timezone) or UNIX seconds") from None
        event = _EVENTS.get(col(row, "event").lower()) if has_event else Event.CALL
        if event is None:
            raise InputError(f"{source}:{lineno}: event {col(row, 'event')!r}: expected call, refusal or optout")
        caller = col(row, "caller_id")
        calls.append(Call(number, col(row, "campaign"), "" if caller.lower() in ANONYMOUS else caller, at, "",
                          f"line {lineno}", event))
    if bad > 5:
        warnings.append(f"{source}: {bad} lines skipped in all")
    if not calls:
        raise InputError(f"{source}: no readable call line (expected time,number,campaign,caller_id"
                         f"{'; ' + warnings[0] if warnings else ''})")
    return Trace(tuple(calls), "csv", {"lines": len(rows), "skipped": bad}, tuple(warnings))
