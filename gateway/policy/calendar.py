"""Public holidays and the callee's local time.

Holidays are computed, not listed, so any year works: the Easter-based ones
come from the Gregorian computus. Results are cached per (region, year).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


def easter_sunday(year: int) -> date:
    """Gregorian Easter (anonymous Gregorian algorithm, a.k.a. Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


# Code du travail L3133-1, and the abolition-of-slavery days of the overseas departments.
_FR_FIXED = ((1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25))
_ABOLITION = {"RE": (12, 20), "YT": (4, 27), "GP": (5, 27), "MQ": (5, 22), "GF": (6, 10)}
FR_REGIONS = frozenset({"FR", "RE", "YT", "GP", "GF", "MQ", "PM"})


@lru_cache(maxsize=256)
def french_holidays(year: int, region: str = "FR", alsace_moselle: bool = False,
                    overseas: bool = True) -> frozenset[date]:
    """Public holidays in ``region`` (FR mainland or an overseas region code) for ``year``."""
    easter = easter_sunday(year)
    days = {date(year, m, d) for m, d in _FR_FIXED}
    days |= {easter + timedelta(days=1), easter + timedelta(days=39), easter + timedelta(days=50)}
    if alsace_moselle and region == "FR":
        days |= {easter - timedelta(days=2), date(year, 12, 26)}
    if overseas and region in _ABOLITION:
        m, d = _ABOLITION[region]
        days.add(date(year, m, d))
    return frozenset(days)


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
