"""Option values every command reads the same way: instants (``--at``, ``--since``/``--until``) and dates."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.cli.exits import UsageError


def parse_at(text: str | None) -> datetime | None:
    """ISO-8601 with an offset; a naive time is refused: the rules depend on the callee's zone."""
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r}: not an ISO-8601 date and time (e.g. 2026-03-10T11:30:00+01:00)") from None
    if at.tzinfo is None:
        # The example is a whole date-time with an offset, whatever was typed (a date alone, or no seconds).
        example = at.isoformat(timespec="seconds") + "+01:00"
        raise UsageError(f"--at {text!r}: add the UTC offset (e.g. {example}): hours rules need it")
    return at


def parse_time(text: str, tz: str, option: str) -> float:
    """UNIX seconds from what a person types; a naive time is read in the call centre's time zone."""
    s = text.strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", s):
        return float(s)
    try:
        at = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {text!r}: not a time (use ISO-8601 such as 2026-03-10T11:30:00+01:00, "
                         "a date such as 2026-03-10, or UNIX seconds)") from None
    if len(s) == 10:  # a bare date: its midnight
        at = datetime.combine(at.date(), time())
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(tz))
    return at.timestamp()


def parse_date(text: str | None, option: str) -> date | None:
    """A calendar date, ``YYYY-MM-DD``."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: not a date (YYYY-MM-DD)") from None


def span(d: timedelta) -> str:
    """A duration as a person reads it, in its largest whole unit: "7 days", "3 hours", "12 minutes"."""
    seconds = abs(d.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''}"
    return f"{int(seconds)} seconds"
