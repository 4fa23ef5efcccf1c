"""The United States pack, rule by rule, with the clock injected (47 CFR 64.1200, the TSR, state statutes)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from gateway.config import GatewaySection, StaleAction
from gateway.policy.campaign import Category, Mode
from gateway.policy.engine import Settings
from gateway.registry.model import ListKind
from gateway.state.model import History

from .helpers import key
from .world import (
    FL,
    LONDON,
    NAVAJO,
    NY,
    NY_LISTED,
    PANHANDLE,
    PARIS,
    PHOENIX,
    TORONTO,
    UTC,
    at,
    attempts,
    decide,
    make_list,
    outcome,
    registries,
)

TUESDAY = "2026-07-14"
EASTERN, CENTRAL, PACIFIC = "America/New_York", "America/Chicago", "America/Los_Angeles"
NOON = at(f"{TUESDAY} 12:00", EASTERN)


@pytest.mark.parametrize(
    ("number", "local", "zone", "expected"),
    [
        # Federal hours: 8:00-21:00 in the callee's time, every day, holidays included.
        (NY, f"{TUESDAY} 08:00", EASTERN, ("ALLOW", None)),
        (NY, f"{TUESDAY} 07:59", EASTERN, ("BLOCK", "outside_hours")),
        (NY, f"{TUESDAY} 20:59", EASTERN, ("ALLOW", None)),
        (NY, f"{TUESDAY} 21:00", EASTERN, ("BLOCK", "outside_hours")),
        (NY, "2026-07-12 12:00", EASTERN, ("ALLOW", None)),  # a Sunday
        (NY, "2026-07-04 12:00", EASTERN, ("ALLOW", None)),  # Independence Day: no federal holiday ban
        (NY, "2026-12-25 12:00", EASTERN, ("ALLOW", None)),  # Christmas
        # Florida (FTSA), Oklahoma, Maryland: to 20:00.
        (FL, f"{TUESDAY} 19:59", EASTERN, ("ALLOW", None)),
        (FL, f"{TUESDAY} 20:00", EASTERN, ("BLOCK", "outside_hours")),
        ("+14055550123", f"{TUESDAY} 20:30", CENTRAL, ("BLOCK", "outside_hours")),  # Oklahoma City
        ("+14105550123", f"{TUESDAY} 20:30", EASTERN, ("BLOCK", "outside_hours")),  # Baltimore
        ("+13125550123", f"{TUESDAY} 20:30", CENTRAL, ("ALLOW", None)),  # Chicago: the federal 21:00
        # 850, Florida's panhandle: Central and Eastern; legal in both, and Florida's 20:00 in both.
        (PANHANDLE, f"{TUESDAY} 08:30", EASTERN, ("BLOCK", "outside_hours")),  # 7:30 in Pensacola
        (PANHANDLE, f"{TUESDAY} 09:00", EASTERN, ("ALLOW", None)),
        (PANHANDLE, f"{TUESDAY} 19:30", CENTRAL, ("BLOCK", "outside_hours")),  # 20:30 in Tallahassee
        (PANHANDLE, f"{TUESDAY} 18:59", CENTRAL, ("ALLOW", None)),
        # Indiana's 812 and 219: Central and Eastern.
        ("+18125550123", f"{TUESDAY} 08:30", EASTERN, ("BLOCK", "outside_hours")),
        ("+18125550123", f"{TUESDAY} 09:00", EASTERN, ("ALLOW", None)),
        ("+12195550123", f"{TUESDAY} 08:30", EASTERN, ("BLOCK", "outside_hours")),
        # Oregon's 541 (Malheur County is Mountain), Idaho's 208 (the panhandle is Pacific).
        ("+15415550123", f"{TUESDAY} 20:30", PACIFIC, ("BLOCK", "outside_hours")),
        ("+15415550123", f"{TUESDAY} 19:30", PACIFIC, ("ALLOW", None)),
        ("+12085550123", f"{TUESDAY} 07:30", PACIFIC, ("BLOCK", "outside_hours")),  # 8:30 in Boise
        # The Dakotas, Nebraska, Kansas: Central and Mountain.
        ("+16055550123", f"{TUESDAY} 08:30", CENTRAL, ("BLOCK", "outside_hours")),
        ("+17015550123", f"{TUESDAY} 08:30", CENTRAL, ("BLOCK", "outside_hours")),
        ("+13085550123", f"{TUESDAY} 08:30", CENTRAL, ("BLOCK", "outside_hours")),
        ("+17855550123", f"{TUESDAY} 08:30", CENTRAL, ("BLOCK", "outside_hours")),
        ("+16205550123", f"{TUESDAY} 08:30", CENTRAL, ("BLOCK", "outside_hours")),
        # Kentucky's 270, Tennessee's 423 and 931, Michigan's 906: Central and Eastern.
        ("+12705550123", f"{TUESDAY} 20:30", CENTRAL, ("BLOCK", "outside_hours")),
        ("+14235550123", f"{TUESDAY} 20:30", CENTRAL, ("BLOCK", "outside_hours")),
        ("+19315550123", f"{TUESDAY} 20:30", CENTRAL, ("BLOCK", "outside_hours")),
        ("+19065550123", f"{TUESDAY} 08:30", EASTERN, ("BLOCK", "outside_hours")),
        ("+19065550123", f"{TUESDAY} 09:00", EASTERN, ("ALLOW", None)),
    ],
)
def test_hours(number: str, local: str, zone: str, expected: tuple[str, str | None]) -> None:
    d = decide(number, at(local, zone), lists=("dnc",))  # the hours alone (the lists are dated July 2026)
    assert outcome(d) == expected, d.detail
    assert d.jurisdiction == "US"


def test_arizona_in_july_keeps_standard_time_but_the_navajo_nation_does_not() -> None:
    # 03:30 UTC on 15 July: 20:30 in Phoenix (MST all year, UTC-7), 21:30 in the Navajo Nation (MDT, UTC-6).
    when = datetime(2026, 7, 15, 3, 30, tzinfo=UTC)
    assert outcome(decide(PHOENIX, when)) == ("ALLOW", None)
    d = decide(NAVAJO, when)
    assert outcome(d) == ("BLOCK", "outside_hours")
    assert "America/Denver" in d.detail
    # In January both are UTC-7: 20:30 everywhere in 928.
    assert outcome(decide(NAVAJO, datetime(2026, 1, 15, 3, 30, tzinfo=UTC))) == ("ALLOW", None)


def test_the_national_list_and_its_exemptions() -> None:
    assert outcome(decide(NY_LISTED, NOON)) == ("BLOCK", "opposition_list")
    # Established business relationship (customers list), written consent (consent list).
    assert outcome(decide(NY_LISTED, NOON, customers="customers")) == ("ALLOW", "exempt_contract")
    d = decide(NY_LISTED, NOON, consent="consent")
    assert (outcome(d), d.basis) == (("ALLOW", None), "consent")
    assert "us_dnc" not in d.lists and "consent" in d.lists
    # Charities, political calls, surveys.
    for category in (Category.CHARITY, Category.POLITICAL, Category.POLLING):
        assert outcome(decide(NY_LISTED, NOON, category=category)) == ("ALLOW", "exempt_category")
    # A newspaper's call is a telephone solicitation in the US (unlike Canada): the list applies.
    assert outcome(decide(NY_LISTED, NOON, category=Category.PRESS)) == ("BLOCK", "opposition_list")


@pytest.mark.parametrize(
    ("listed_on", "kind_days", "expected"),
    [
        ("customers", 17 * 30, ("ALLOW", "exempt_contract")),  # a purchase 17 months ago
        ("customers", 19 * 30, ("BLOCK", "opposition_list")),  # 19 months ago: over
        ("inquiries", 80, ("ALLOW", "exempt_contract")),  # an inquiry under 3 months ago
        ("inquiries", 100, ("BLOCK", "opposition_list")),  # over 3 months
    ],
)
def test_the_business_relationship_ends_when_its_list_is_dated(listed_on: str, kind_days: int,
                                                                expected: tuple[str, str | None]) -> None:
    since = NOON.date() - timedelta(days=kind_days)
    regs = registries(dates={listed_on: {key(NY_LISTED): since}})
    d = decide(NY_LISTED, NOON, regs=regs, **{listed_on: listed_on})
    assert outcome(d) == expected


def test_exemptions_never_lift_the_companys_own_list_nor_a_do_not_call_request() -> None:
    assert outcome(decide("+12125550200", NOON, category=Category.CHARITY)) == ("BLOCK", "internal_dnc")
    refused = History(last_refusal=NOON - timedelta(days=400))
    d = decide(NY, NOON, history=refused, category=Category.CHARITY)
    assert (outcome(d), d.rule) == (("BLOCK", "internal_dnc"), "internal_dnc.refusal")
    # Honoured 5 years (64.1200(d)(6)), then over.
    assert outcome(decide(NY, NOON, history=History(last_refusal=NOON - timedelta(days=5 * 365 + 3)))) == \
        ("ALLOW", None)


def test_no_french_cap_cooldown_or_holiday() -> None:
    many = attempts(NOON, *range(1, 20 * 24, 24))  # a call a day for 20 days
    assert outcome(decide(NY, NOON, history=many)) == ("ALLOW", None)
    assert decide(NY, NOON).cap is None  # nothing to count against in New York
    # French holidays and hours mean nothing there: 14 July at 20:30, a Tuesday.
    assert outcome(decide(NY, at("2026-07-14 20:30", EASTERN))) == ("ALLOW", None)


@pytest.mark.parametrize(
    ("hours_ago", "expected"),
    [
        ((1, 5, 10), ("BLOCK", "frequency_cap")),  # three in the last 24 hours
        ((1, 5), ("ALLOW", None)),
        ((1, 5, 24.5), ("ALLOW", None)),  # a rolling 24 hours, not a calendar day
        ((23.9, 23.95, 23.99), ("BLOCK", "frequency_cap")),
    ],
)
def test_florida_allows_three_calls_in_24_hours(hours_ago: tuple[float, ...], expected: tuple[str, str | None]) -> None:
    d = decide(FL, NOON, history=attempts(NOON, *hours_ago), lists=("dnc",))
    assert outcome(d) == expected
    if expected[0] == "ALLOW":
        assert d.cap is not None and d.cap.limit == 3 and d.cap.since == NOON - timedelta(hours=24)
    else:
        assert "24 hours (Florida)" in d.detail


def test_a_campaign_cap_and_the_state_cap_both_apply() -> None:
    history = attempts(NOON, 30, 50)  # two calls, both over 24 hours ago
    d = decide(FL, NOON, history=history, lists=("dnc",), max_attempts=2, window_days=7)
    assert outcome(d) == ("BLOCK", "frequency_cap")
    assert "7 days" in d.detail


def test_caller_id_must_be_presented() -> None:
    d = decide(NY, NOON, caller_id="anonymous")
    assert (outcome(d), d.rule) == (("BLOCK", "caller_id"), "caller_id.masked")
    assert outcome(decide(NY, NOON, caller_id="+12125550999")) == ("ALLOW", None)


def test_reported_state_day_bans_apply_unless_switched_off() -> None:
    """The reported day bans are the stricter reading: on by default, off where unverified_state_rules_off
    names the state (they were off unless named before)."""
    sunday = at("2026-07-12 12:00", CENTRAL)
    new_orleans = "+15045550123"
    d = decide(new_orleans, sunday)
    assert outcome(d) == ("BLOCK", "outside_hours")
    assert "La. R.S. 45:811" in d.detail
    off = Settings.of(GatewaySection(unverified_state_rules_off=("LA",)))
    assert outcome(decide(new_orleans, sunday, settings=off)) == ("ALLOW", None)
    independence = at("2026-07-03 12:00", CENTRAL)  # a Friday: the observed holiday in 2026
    assert outcome(decide(new_orleans, independence)) == ("BLOCK", "public_holiday")
    assert outcome(decide(new_orleans, independence, settings=off)) == ("ALLOW", None)


def test_a_stale_us_list_blocks_us_calls_only() -> None:
    stale = registries(us_dnc=make_list("us_dnc", ListKind.OPPOSITION, [NY_LISTED], as_of=date(2026, 5, 1),
                                        max_age_days=31))
    assert outcome(decide(NY, NOON, regs=stale)) == ("BLOCK", "registry_stale")
    for number, zone in ((TORONTO, "America/Toronto"), (LONDON, "Europe/London"), (PARIS, "Europe/Paris")):
        d = decide(number, at(f"{TUESDAY} 12:00", zone), regs=stale, consent="consent")
        assert d.reason != "registry_stale", (number, d)
        assert "us_dnc" not in d.lists
    # A consented call does not consult the national list: its staleness does not block it either.
    assert outcome(decide(NY_LISTED, NOON, regs=stale, consent="consent")) == ("ALLOW", None)
    # stale_action = "warn": reported, not blocking.
    warn = Settings.of(GatewaySection(stale_action=StaleAction.WARN))
    d = decide(NY, NOON, regs=stale, settings=warn)
    assert outcome(d) == ("ALLOW", None) and d.warnings


def test_a_us_list_never_applies_to_another_country() -> None:
    # +1 416 555 0199 is (wrongly) in the US file: a Canadian number, the US list does not apply to it.
    assert outcome(decide("+14165550199", at(f"{TUESDAY} 12:00", "America/Toronto"))) == ("ALLOW", None)


def test_monitor_mode_lets_the_call_through_and_says_what_would_block() -> None:
    d = decide(NY_LISTED, NOON, mode=Mode.MONITOR)
    assert (str(d.verdict), d.reason, d.would_block) == ("ALLOW", "opposition_list", True)
