"""SIPp injection files (``sipp -inf FILE``): read them as calls, and write one from a trace.

Column convention, shared with ``tests/sipp/uac.xml``::

    SEQUENTIAL
    number;campaign;caller_id
    0612000001;prospect;0162000000

``[field0]`` is the dialled number (Request-URI user), ``[field1]`` the campaign
(sent as an ``X-Campaign`` header), ``[field2]`` the caller ID (From user;
``anonymous`` when the trace had none). The first line is SIPp's read mode
(SEQUENTIAL, RANDOM or USER, optionally followed by options such as
``,PRINTF=10``). An optional ``[field3]`` is the call's time (as in plain CSV: ISO-8601, without an
offset read in ``timezone``, or UNIX seconds; ``uac.xml`` ignores it): an offline replay decides each call
at it. Without one the calls are replayed back to back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, tzinfo

from gateway.replay.plaincsv import parse_time
from gateway.replay.trace import ANONYMOUS, Call, InputError, Trace

__all__ = ["is_sipp_csv", "read", "write"]

_MODE = re.compile(r"^\s*(SEQUENTIAL|RANDOM|USER)\s*(,.*)?$", re.IGNORECASE)
_FORBIDDEN = re.compile(r"[;\r\n]")


def is_sipp_csv(text: str) -> bool:
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    return bool(_MODE.match(first))


def read(text: str, source: str, timezone: tzinfo = UTC) -> Trace:
    lines = text.splitlines()
    calls: list[Call] = []
    warnings: list[str] = []
    skipped = 0
    for lineno, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line.startswith(("#", "//")):
            continue
        fields = [f.strip() for f in line.split(";")]
        number = fields[0]
        if not number:
            skipped += 1
            if skipped <= 3:
                warnings.append(f"{source}:{lineno}: no number in field0: line skipped")
            continue
        campaign = fields[1] if len(fields) > 1 else ""
        caller = fields[2] if len(fields) > 2 else ""
        if caller.lower() in ANONYMOUS:
            caller = ""
        try:
            at = parse_time(fields[3], timezone) if len(fields) > 3 else None
        except ValueError:
            raise InputError(f"{source}:{lineno}: time {fields[3]!r} in field3 cannot be read: expected ISO-8601 "
                             "or UNIX seconds") from None
        calls.append(Call(number, campaign, caller, at, "", f"line {lineno}"))
    if skipped > 3:
        warnings.append(f"{source}: {skipped} lines without a number skipped in all")
    if not calls:
        raise InputError(f"{source}: SIPp injection file with no call line (expected 'number;campaign;caller_id')")
    return Trace(tuple(calls), "sipp-csv", {"lines": len(lines), "skipped": skipped}, tuple(warnings))


def write(calls: Iterable[Call], mode: str = "SEQUENTIAL") -> tuple[str, list[str]]:
    """The injection file for ``uac.xml``, and warnings for values SIPp could not carry."""
    out = [mode]
    warnings: list[str] = []
    for c in calls:
        fields = [c.number, c.campaign, c.caller_id or "anonymous"]
        if any(_FORBIDDEN.search(f) for f in fields):
            warnings.append(f"{c.origin or c.call_id}: ';' or a line break in a field replaced by '_'")
            fields = [_FORBIDDEN.sub("_", f) for f in fields]
        out.append(";".join(fields))
    return "\n".join(out) + "\n", warnings
