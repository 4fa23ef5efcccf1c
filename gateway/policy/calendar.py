"""The callee's local time and calendar windows (public holidays are each pack's: ``france.py``)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_ZONES: dict[str, ZoneInfo] = {}


def zone(name: str) -> ZoneInfo:
    """A ZoneInfo from a plain dict: on the hot path a dict look-up beats ZoneInfo's own cache."""
    zi = _ZONES.get(name)
    if zi is None:
        zi = _ZONES[name] = ZoneInfo(name)
    return zi


def local_times(now: datetime, zones: tuple[str, ...], fallback: str) -> tuple[datetime, ...]:
    """``now`` in each of the callee's zones (the centre's zone when the number has none)."""
    if len(zones) == 1:  # the usual case, on the hot path: the look-up inlined
        zi = _ZONES.get(zones[0]) or zone(zones[0])
        return (now.astimezone(zi),)
    return tuple(now.astimezone(zone(z)) for z in (zones or (fallback,)))


def window_start(local_now: datetime, days: int) -> datetime:
    """Start of a window of ``days`` calendar days ending today, in ``local_now``'s zone."""
    start_day = local_now.date() - timedelta(days=days - 1)
    return datetime.combine(start_day, time(0), local_now.tzinfo)
