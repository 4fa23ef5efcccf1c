"""SIPp injection files (``sipp -inf FILE``): read them as calls, and write one from a trace.

Column convention, shared with ``tests/sipp/uac.xml``::

    SEQUENTIAL
    number;campaign;caller_id
    0612000001;prospect;0162000000

``[field0]`` is the dialled number (Request-URI user), ``[field1]`` the campaign
(sent as an ``X-Campaign`` header), ``[field2]`` the caller ID (From user;
``anonymous`` when the trace had none). The first line is SIPp's read mode
(SEQUENTIAL, RANDOM or USER, optionally followed by options such as
``,PRINTF=10``). SIPp files carry no time: such calls are replayed back to back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.replay.trace import ANONYMOUS, Call, InputError, Trace

__all__ = ["is_sipp_csv", "read", "write"]

_MODE = re.compile(r"^\s*(SEQUENTIAL|RANDOM|USER)\s*(,.*)?$", re.IGNORECASE)
_FORBIDDEN = re.compile(r"[;\r\n]")


def is_sipp_csv(text: str) -> bool:
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    return bool(_MODE.match(first))


def read(text: str, source: str) -> Trace:
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
        calls.append(Call(number, campaign, caller, None, "", f"line {lineno}"))
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
