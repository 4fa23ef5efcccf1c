"""The Canadian pack, rule by rule, with the clock injected (CRTC Unsolicited Telecommunications Rules)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta

from gateway.policy.campaign import Category
from gateway.state.model import History

from .helpers import key
from .world import NEWFOUNDLAND, TORONTO, TORONTO_LISTED, UTC, at, attempts, decide, outcome, registries

TORONTO_TZ = "America/Toronto"
NOON = at("2026-07-14 12:00", TORONTO_TZ)  # a Tuesday


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-07-14 08:59", ("BLOCK", "outside_hours")),  # Tuesday
        ("2026-07-14 09:00", ("ALLOW", None)),
        ("2026-07-14 21:29", ("ALLOW", None)),
        ("2026-07-14 21:30", ("BLOCK", "outside_hours")),
        ("2026-07-11 09:30", ("BLOCK", "outside_hours")),  # Saturday: from 10:00
        ("2026-07-11 10:00", ("ALLOW", None)),
        ("2026-07-11 17:59", ("ALLOW", None)),
        ("2026-07-11 18:00", ("BLOCK", "outside_hours")),  # Saturday: to 18:00
        ("2026-07-12 09:59", ("BLOCK", "outside_hours")),  # Sunday
        ("2026-07-12 10:00", ("ALLOW", None)),
        ("2026-07-12 18:30", ("BLOCK", "outside_hours")),
        ("2026-07-01 12:00", ("ALLOW", None)),  # Canada Day: the rules ban no holiday
    ],
)
def test_weekday_and_weekend_hours(local: str, expected: tuple[str, str | None]) -> None:
    d = decide(TORONTO, at(local, TORONTO_TZ), lists=("dnc",))
    assert (outcome(d), d.jurisdiction) == (expected, "CA"), d.detail


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # 11:30 UTC on a Tuesday in July: 9:00 in St. John's (NDT, UTC-2:30), 8:30 in Labrador (ADT, UTC-3).
        (datetime(2026, 7, 14, 11, 30, tzinfo=UTC), ("BLOCK", "outside_hours")),
        (datetime(2026, 7, 14, 12, 0, tzinfo=UTC), ("ALLOW", None)),  # 9:30 and 9:00
        # 00:00 UTC Wednesday: 21:30 in St. John's (over), 21:00 in Labrador.
        (datetime(2026, 7, 15, 0, 0, tzinfo=UTC), ("BLOCK", "outside_hours")),
        (datetime(2026, 7, 14, 23, 59, tzinfo=UTC), ("ALLOW", None)),
    ],
)
def test_newfoundland_half_hour_and_labrador(utc: datetime, expected: tuple[str, str | None]) -> None:
    assert outcome(decide(NEWFOUNDLAND, utc, lists=("dnc",))) == expected


def test_the_dncl_and_its_exemptions() -> None:
    assert outcome(decide(TORONTO_LISTED, NOON)) == ("BLOCK", "opposition_list")
    assert outcome(decide(TORONTO_LISTED, NOON, customers="customers")) == ("ALLOW", "exempt_contract")
    assert outcome(decide(TORONTO_LISTED, NOON, consent="consent")) == ("ALLOW", None)
    for category in (Category.CHARITY, Category.POLITICAL, Category.POLLING, Category.PRESS):
        assert outcome(decide(TORONTO_LISTED, NOON, category=category)) == ("ALLOW", "exempt_category")
    assert outcome(decide(TORONTO_LISTED, NOON, category=Category.B2B)) == ("ALLOW", "exempt_b2b")


@pytest.mark.parametrize(
    ("listed_on", "months", "days", "expected"),
    [
        ("customers", 18, 0, ("ALLOW", "exempt_contract")),  # calendar months: the same day 18 months on
        ("customers", 18, 1, ("BLOCK", "opposition_list")),
        ("inquiries", 6, 0, ("ALLOW", "exempt_contract")),  # an inquiry: 6 months in Canada
        ("inquiries", 6, 1, ("BLOCK", "opposition_list")),
    ],
)
def test_the_business_relationship_window(listed_on: str, months: int, days: int,
                                          expected: tuple[str, str | None]) -> None:
    since = NOON.date() - relativedelta(months=months) - timedelta(days=days)
    regs = registries(dates={listed_on: {key(TORONTO_LISTED): since}})
    assert outcome(decide(TORONTO_LISTED, NOON, regs=regs, **{listed_on: listed_on})) == expected


def test_exempt_calls_keep_the_companys_list_and_the_hours() -> None:
    assert outcome(decide("+14165550200", NOON, category=Category.CHARITY)) == ("BLOCK", "internal_dnc")
    assert outcome(decide(TORONTO, NOON, history=History(last_refusal=NOON - timedelta(days=90)))) == \
        ("BLOCK", "internal_dnc")
    # The Telemarketing Rules' hours bind calls to businesses too.
    late = at("2026-07-14 22:00", TORONTO_TZ)
    assert outcome(decide(TORONTO, late, category=Category.B2B)) == ("BLOCK", "outside_hours")


def test_no_cap_cooldown_or_sector_ban_of_france() -> None:
    many = attempts(NOON, *range(1, 10))
    assert outcome(decide(TORONTO, NOON, history=many)) == ("ALLOW", None)
    assert outcome(decide(TORONTO, NOON, sector="energy_renovation")) == ("ALLOW", None)


def test_caller_id_must_be_displayed() -> None:
    assert outcome(decide(TORONTO, NOON, caller_id="")) == ("BLOCK", "caller_id")
