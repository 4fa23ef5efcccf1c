"""The callee's local time and calendar windows (public holidays are each pack's: ``france.py``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

_D = TypeVar("_D", bound=date)

_ZONES: dict[str, ZoneInfo] = {}
# Zones tuple -> (the UTC hour, one zone per distinct UTC offset throughout that hour).
_DISTINCT: dict[tuple[str, ...], tuple[int, tuple[ZoneInfo, ...]]] = {}
_LAST_MICRO = timedelta(seconds=3599, microseconds=999_999)
_MINUTE_LAST = timedelta(seconds=59, microseconds=999_999)
_MINUTE = timedelta(minutes=1)
# Zones tuple -> the clock of the latest UTC minute a call was decided in for it.
_CLOCKS: dict[tuple[str, ...], Clock] = {}


class Clock:
    """The callee's local times during one UTC minute, for a tuple of zones: what every call to those zones in
    that minute shares (issue 25: the local-time computation once a minute, not once a call).

    ``local`` holds the local times at the minute's start: exact to the minute, which is all the rules read of
    them (the hours' bounds are whole minutes, dates change at midnight). A plan memoises what its rules
    computed from a clock (an hours verdict, a holiday) by the clock itself.
    """

    __slots__ = ("dates", "end", "local", "minute", "regimes", "start", "today", "whole")

    def __init__(self, minute: int, local: tuple[datetime, ...]) -> None:
        self.minute = minute
        self.start = minute * 60.0  # the minute as POSIX seconds, [start, end): one float comparison per call
        self.end = self.start + 60.0
        self.local = local
        # The regime of these dates under a pack's dates (engine.Context), by the pack's regime dates.
        self.regimes: dict[object, object] = {}
        self.dates = (local[0].date(),) if len(local) == 1 else tuple(t.date() for t in local)
        self.today = self.dates[0]
        self.whole = True  # every local time whole minutes off UTC, all the minute long


def clock_at(now: datetime, zones: tuple[str, ...], fallback: str) -> Clock | None:
    """The :class:`Clock` of ``now``'s UTC minute for ``zones`` (the fallback zone when there are none), memoised
    per zones tuple; None when a local time is not whole minutes off UTC or changes offset within the minute
    (only in the 19th century's local mean times): then the caller computes ``local_times`` exactly."""
    t = now.timestamp()
    key = zones or (fallback,)
    found = _CLOCKS.get(key)
    if found is None or not found.start <= t < found.end:
        found = _clock(int(t // 60), key, fallback)
    return found if found.whole else None


def _clock(minute: int, zones: tuple[str, ...], fallback: str) -> Clock:
    start = datetime.fromtimestamp(minute * 60, UTC)
    clock = Clock(minute, local_times(start, zones, fallback))
    end = start + _MINUTE_LAST
    for lt in clock.local:
        offset = lt.utcoffset()
        if offset is None or offset % _MINUTE or end.astimezone(lt.tzinfo).utcoffset() != offset:
            clock.whole = False
    if len(_CLOCKS) >= 1024:  # bounded: one entry per zones tuple in use
        _CLOCKS.clear()
    _CLOCKS[zones] = clock
    return clock


def zone(name: str) -> ZoneInfo:
    """A ZoneInfo from a plain dict: on the hot path a dict look-up beats ZoneInfo's own cache."""
    zi = _ZONES.get(name)
    if zi is None:
        zi = _ZONES[name] = ZoneInfo(name)
    return zi


def local_times(now: datetime, zones: tuple[str, ...], fallback: str) -> tuple[datetime, ...]:
    """``now`` in each of the callee's zones (the centre's zone when the number has none), once per wall clock:
    zones at the same UTC offset show the same local time, so the first of them stands for all.

    A number in many zones (a toll-free or 5XX number is in every zone of the NANP, 42 of them, and must be
    legal in all) then costs its distinct offsets (about 11), not 42 conversions and 42 hours checks; which
    zones share an offset is looked up once an hour.
    """
    if len(zones) == 1:  # the usual case, on the hot path: the look-up inlined
        zi = _ZONES.get(zones[0]) or zone(zones[0])
        return (now.astimezone(zi),)
    if not zones:
        return (now.astimezone(zone(fallback)),)
    hour = int(now.timestamp()) // 3600
    found = _DISTINCT.get(zones)
    if found is None or found[0] != hour:
        found = _distinct(zones, hour)
    return tuple(now.astimezone(zi) for zi in found[1])


def _distinct(zones: tuple[str, ...], hour: int) -> tuple[int, tuple[ZoneInfo, ...]]:
    """The zones of distinct UTC offsets throughout a UTC hour, in their order (so the first zone comes first).

    A zone whose offset differs between the hour's first and last microsecond changes within it (a DST switch):
    then every zone is kept, unmemoised. No zone switches twice within an hour, so equal ends mean no switch."""
    start = datetime.fromtimestamp(hour * 3600, UTC)
    end = start + _LAST_MICRO
    seen: set[timedelta | None] = set()
    keep: list[ZoneInfo] = []
    for name in zones:
        zi = zone(name)
        offset = start.astimezone(zi).utcoffset()
        if end.astimezone(zi).utcoffset() != offset:  # a switch within the hour: no shortcut
            return hour, tuple(zone(z) for z in zones)
        if offset not in seen:
            seen.add(offset)
            keep.append(zi)
    if len(_DISTINCT) >= 1024:  # bounded: one entry per zones tuple in use
        _DISTINCT.clear()
    found = _DISTINCT[zones] = hour, tuple(keep)
    return found


def window_start(local_now: datetime, days: int) -> datetime:
    """Start of a window of ``days`` calendar days ending today, in ``local_now``'s zone."""
    start_day = local_now.date() - timedelta(days=days - 1)
    return datetime.combine(start_day, time(0), local_now.tzinfo)


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, clamped to the month's end where it has no such day (31 Aug +
    6 months is 28 Feb or 29 Feb; 29 Feb 2024 + 18 months is 29 Aug 2025): the law counts months, not 30 days
    (47 CFR 64.1200(f)(5): "within the eighteen (18) months immediately preceding")."""
    return day + relativedelta(months=months)


def add_period(day: _D, years: int = 0, months: int = 0, days: int = 0) -> _D:
    """``day`` (or an instant, on its own wall clock) plus calendar years, months and days (3 years and 14 days
    after 29 Feb 2024 is 14 Mar 2027)."""
    moved: _D = day + relativedelta(years=years, months=months, days=days)
    return moved
