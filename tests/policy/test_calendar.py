"""calendar.local_times: one local time per distinct wall clock, the same set of wall clocks as every zone's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.numbers import Normaliser
from gateway.policy import nanp
from gateway.policy.calendar import local_times, zone
from tests.policy import world

TOLL_FREE = nanp.zones_of(Normaliser("US").parse("8005550123"))


def _every_zone(now: datetime, zones: tuple[str, ...]) -> tuple[datetime, ...]:
    return tuple(now.astimezone(zone(z)) for z in zones)


def _walls(times: tuple[datetime, ...]) -> set[datetime]:
    return {t.replace(tzinfo=None) for t in times}


def test_a_toll_free_number_is_in_every_zone_of_the_nanp_and_costs_its_distinct_offsets() -> None:
    assert len(TOLL_FREE) == 42 and {"Pacific/Guam", "Pacific/Pago_Pago", "America/St_Johns"} <= set(TOLL_FREE)
    now = datetime(2026, 7, 14, 22, 30, tzinfo=UTC)
    got = local_times(now, TOLL_FREE, "Europe/Paris")
    assert len(got) == len({t.utcoffset() for t in got}) == 11
    assert _walls(got) == _walls(_every_zone(now, TOLL_FREE))
    assert got[0].tzinfo is zone(TOLL_FREE[0])  # the first zone comes first (the cap window is counted in it)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(datetime(2026, 1, 1), datetime(2028, 1, 1)).map(lambda d: d.replace(tzinfo=UTC)),
       st.sampled_from([TOLL_FREE, ("America/St_Johns", "America/Goose_Bay"), ("America/Denver", "America/Phoenix"),
                        ("Europe/Guernsey", "Europe/Isle_of_Man", "Europe/Jersey", "Europe/London")]))
def test_the_same_wall_clocks_as_every_zone(now: datetime, zones: tuple[str, ...]) -> None:
    got = local_times(now, zones, "Europe/Paris")
    assert _walls(got) == _walls(_every_zone(now, zones))
    assert got[0] == now.astimezone(zone(zones[0])) and got[0].tzinfo is zone(zones[0])


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 3, 8, 5, 29, tzinfo=UTC), datetime(2026, 3, 8, 5, 30, tzinfo=UTC),  # St John's switches at 5:30
     datetime(2026, 11, 1, 4, 29, tzinfo=UTC), datetime(2026, 11, 1, 4, 30, tzinfo=UTC),
     datetime(2026, 3, 8, 6, 59, 59, 999_999, tzinfo=UTC), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)],  # New York
)
def test_around_a_switch_within_the_hour(now: datetime) -> None:
    for zones in (("America/St_Johns", "America/Halifax"), ("America/New_York", "America/Toronto"), TOLL_FREE):
        for t in (now - timedelta(minutes=30), now, now + timedelta(minutes=30)):  # the memo filled either side
            assert _walls(local_times(t, zones, "Europe/Paris")) == _walls(_every_zone(t, zones))


@pytest.mark.parametrize(
    ("when", "verdict"),
    [("2026-07-14 21:59", "BLOCK"), ("2026-07-14 22:00", "ALLOW"), ("2026-07-14 23:29", "ALLOW"),
     ("2026-07-14 23:30", "BLOCK"), ("2026-07-14 15:00", "BLOCK"),
     ("2026-01-14 21:59", "BLOCK"), ("2026-01-14 22:00", "ALLOW"), ("2026-01-15 00:29", "ALLOW"),
     ("2026-01-15 00:30", "BLOCK")],
)
def test_a_toll_free_number_must_be_legal_in_every_zone(when: str, verdict: str) -> None:
    """8:00-21:00 from Guam (UTC+10) to American Samoa (UTC-11) and St John's: 22:00-23:30 UTC in summer,
    22:00-00:30 in winter; the most restrictive reading of a number tied to no place."""
    for number in ("+18005550123", "+18885550123", "+15005550123"):
        d = world.decide(number, world.at(when, "UTC"))
        assert str(d.verdict) == verdict, (number, when, d.detail)
        assert d.jurisdiction == "US"
