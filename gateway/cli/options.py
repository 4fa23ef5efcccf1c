"""Option values every command reads the same way: instants (``--at``, ``--since``/``--until``) and dates."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.cli.exits import UsageError

# The example a time hint shows, in the config's own zone: its offset that day is what a person would type there.
_EXAMPLE = datetime(2026, 3, 10, 11, 30)


def time_forms(tz: str) -> str:
    """Every form a time option takes, with examples in the config's zone ``tz`` (its offset, not always +01:00)."""
    example = _EXAMPLE.replace(tzinfo=ZoneInfo(tz)).isoformat(timespec="seconds")
    return (f"ISO-8601 with an offset ({example}), a date ({_EXAMPLE.date().isoformat()}, its midnight) or a "
            f"local time ({_EXAMPLE.isoformat(timespec='minutes')}) read in {tz}, or UNIX seconds")


def parse_instant(text: str, tz: str, option: str) -> datetime:
    """The one reading of every time option (``--at``, ``--since``, ``--until``): ISO-8601 with an offset; a date
    (its midnight) or a time without offset, read in the config's zone ``tz`` (the call centre's); UNIX seconds."""
    s = text.strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", s):
        return datetime.fromtimestamp(float(s), UTC)
    try:
        at = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {text!r}: not a time: use {time_forms(tz)}") from None
    if len(s) == 10:  # a bare date: its midnight
        at = datetime.combine(at.date(), time())
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(tz))
    return at


def parse_at(text: str | None, tz: str, option: str = "--at") -> datetime | None:
    """``--at``: :func:`parse_instant`, or None when not given (now)."""
    return None if text is None else parse_instant(text, tz, option)


def parse_time(text: str, tz: str, option: str) -> float:
    """UNIX seconds of :func:`parse_instant` (``--since``, ``--until``)."""
    return parse_instant(text, tz, option).timestamp()


def campaign_named(name: str, campaigns: Collection[str], option: str = "--campaign") -> str:
    """``name`` when the config defines it; else bad input (exit 2) with the closest names (a typo is the usual
    cause: a check or a replay of a campaign that does not exist would only show ``unknown_campaign``)."""
    if name in campaigns:
        return name
    raise UsageError(f"{option} {name!r}: no campaign of that name in the config{did_you_mean(name, campaigns)}")


def did_you_mean(name: str, names: Collection[str]) -> str:
    """``" (did you mean 'prospect'?)"``, or the names defined when none is close."""
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    if not close:  # a case slip ("Prospect") is close whatever difflib says
        close = [n for n in names if n.lower() == name.lower()]
    if close:
        return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    return f" (defined: {', '.join(sorted(names))})" if names else " (none is defined)"


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
