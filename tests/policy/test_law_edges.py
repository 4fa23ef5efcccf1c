"""The law at its edges (issue 21): relationship windows in calendar months, legal list ages, refusal lifetimes,
overlay zones, state rules named in the block, Canada's surveys, a withdrawn consent-file row."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from gateway.config import GatewaySection
from gateway.policy.calendar import add_months, add_period
from gateway.policy.campaign import Campaign, Category
from gateway.policy.engine import FOREVER, Engine, Settings
from gateway.policy.packs import PACKS
from gateway.registry.model import ListKind, Registries
from gateway.state.model import History

from .helpers import key
from .world import (
    LONDON,
    NEWFOUNDLAND,
    NY,
    NY_LISTED,
    TORONTO,
    TORONTO_LISTED,
    at,
    attempts,
    decide,
    make_list,
    outcome,
    registries,
)

EASTERN, CENTRAL = "America/New_York", "America/Chicago"


# -- calendar months ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2025, 8, 15), 18, date(2027, 2, 15)),  # RULES.md's example: not 540 days later (2027-02-06)
    (date(2024, 2, 29), 18, date(2025, 8, 29)),  # a leap day
    (date(2024, 2, 29), 12, date(2025, 2, 28)),  # ... to a year without one: the month's end
    (date(2025, 8, 31), 18, date(2027, 2, 28)),  # the 31st to a short month
    (date(2026, 8, 31), 18, date(2028, 2, 29)),  # ... to a leap February
    (date(2025, 11, 30), 3, date(2026, 2, 28)),
    (date(2025, 12, 31), 6, date(2026, 6, 30)),
    (date(2025, 1, 31), 1, date(2025, 2, 28)),
])
def test_calendar_months_clamp_to_the_months_end(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_three_years_and_fourteen_days() -> None:
    assert add_period(date(2024, 2, 29), years=3, days=14) == date(2027, 3, 14)
    assert add_period(date(2026, 1, 20), years=3, days=14) == date(2029, 2, 3)


# -- dated business relationships ----------------------------------------------------------------------------

def _dated(listed_on: str, since: date | None, number: str = NY_LISTED) -> Registries:
    return registries(dates={listed_on: {key(number): since}} if since is not None else {})


@pytest.mark.parametrize(("call_day", "expected"), [
    ("2027-02-15", ("ALLOW", "exempt_contract")),  # 18 calendar months after 15 Aug 2025: the last day
    ("2027-02-16", ("BLOCK", "opposition_list")),
    ("2027-02-06", ("ALLOW", "exempt_contract")),  # 540 days: still within (months are not 30 days)
])
def test_a_purchase_exempts_for_18_calendar_months_in_the_us(call_day: str, expected: tuple[str, str]) -> None:
    regs = _dated("customers", date(2025, 8, 15))
    d = decide(NY_LISTED, at(f"{call_day} 12:00", EASTERN), regs=regs, customers="customers", check_staleness=False)
    assert outcome(d) == expected


def test_a_customer_of_2024_on_the_national_list_is_not_called_today() -> None:
    regs = _dated("customers", date(2024, 3, 1))
    d = decide(NY_LISTED, at("2026-07-14 12:00", EASTERN), regs=regs, customers="customers")
    assert outcome(d) == ("BLOCK", "opposition_list")


@pytest.mark.parametrize(("number", "zone", "months"),
                         [(NY_LISTED, EASTERN, 3), (TORONTO_LISTED, "America/Toronto", 6)])
def test_an_inquiry_exempts_for_the_packs_months(number: str, zone: str, months: int) -> None:
    since = date(2026, 2, 28)
    last = add_months(since, months)
    regs = registries(dates={"inquiries": {key(number): since}})
    on_last = at(f"{last.isoformat()} 12:00", zone)
    fresh = {"inquiries": "inquiries", "check_staleness": False}
    assert outcome(decide(number, on_last, regs=regs, **fresh)) == ("ALLOW", "exempt_contract")
    after = at(f"{(last + timedelta(days=1)).isoformat()} 12:00", zone)
    assert outcome(decide(number, after, regs=regs, **fresh)) == ("BLOCK", "opposition_list")


def test_a_do_not_call_request_ends_the_relationship() -> None:
    regs = _dated("customers", date(2026, 7, 1))
    now = at("2026-07-14 12:00", EASTERN)
    refused = History(last_refusal=now - timedelta(days=2))
    assert outcome(decide(NY_LISTED, now, regs=regs, customers="customers", history=refused)) == \
        ("BLOCK", "internal_dnc")


def test_an_undated_relationship_follows_the_campaign() -> None:
    now = at("2026-07-14 12:00", EASTERN)
    regs = _dated("customers", None)  # on the list, no date
    d = decide(NY_LISTED, now, regs=regs, customers="customers")
    assert outcome(d) == ("ALLOW", "exempt_contract")
    assert str(d.basis) == "exempt_contract_undated"
    assert any("undated_relationship = allow" in w for w in d.warnings)
    d = decide(NY_LISTED, now, regs=regs, customers="customers", undated_relationship="block")
    assert outcome(d) == ("BLOCK", "opposition_list")
    d = decide(NY, now, regs=regs, customers="customers", undated_relationship="block")  # not on the DNC
    assert outcome(d) == ("ALLOW", None)


def test_a_dated_relationship_says_until_when() -> None:
    regs = _dated("customers", date(2025, 8, 15))
    d = decide(NY_LISTED, at("2026-07-14 12:00", EASTERN), regs=regs, customers="customers")
    assert "exempt until 2027-02-15" in d.detail and "64.1200(f)(5)" in d.detail


# -- legal list ages -------------------------------------------------------------------------------------------

def test_a_national_list_without_max_age_gets_the_laws() -> None:
    now = at("2026-07-14 12:00", EASTERN)
    for age, expected in ((31, ("BLOCK", "opposition_list")), (32, ("BLOCK", "registry_stale"))):
        lst = make_list("us_dnc", ListKind.OPPOSITION, [NY_LISTED], as_of=date(2026, 7, 14) - timedelta(days=age))
        d = decide(NY_LISTED, now, regs=registries(us_dnc=lst))
        assert outcome(d) == expected, age
    assert "64.1200(c)(2)(i)(D)" in d.detail
    # A shorter max_age_days wins; a longer one never lengthens the law's.
    lst = make_list("us_dnc", ListKind.OPPOSITION, [NY_LISTED], as_of=date(2026, 7, 4), max_age_days=7)
    assert outcome(decide(NY_LISTED, now, regs=registries(us_dnc=lst))) == ("BLOCK", "registry_stale")
    lst = make_list("us_dnc", ListKind.OPPOSITION, [NY_LISTED], as_of=date(2026, 6, 1), max_age_days=90)
    assert outcome(decide(NY_LISTED, now, regs=registries(us_dnc=lst))) == ("BLOCK", "registry_stale")


@pytest.mark.parametrize(("name", "number", "zone", "days"), [
    ("ca_dncl", TORONTO_LISTED, "America/Toronto", 31), ("gb_tps", "+442079460100", "Europe/London", 28)])
def test_canada_and_the_tps_have_their_legal_ages(name: str, number: str, zone: str, days: int) -> None:
    now = at("2026-07-14 12:00", zone)
    fresh = make_list(name, ListKind.OPPOSITION, [number], as_of=date(2026, 7, 14) - timedelta(days=days))
    stale = make_list(name, ListKind.OPPOSITION, [number], as_of=date(2026, 7, 13) - timedelta(days=days))
    assert outcome(decide(number, now, regs=registries(**{name: fresh}))) == ("BLOCK", "opposition_list")
    assert outcome(decide(number, now, regs=registries(**{name: stale}))) == ("BLOCK", "registry_stale")


# -- refusal lifetimes -----------------------------------------------------------------------------------------

def test_a_canadian_refusal_lasts_three_years_and_fourteen_days() -> None:
    refused = at("2023-07-01 12:00", "America/Toronto")
    history = History(last_refusal=refused)
    last = at("2026-07-15 11:59", "America/Toronto")  # 3 years + 14 days, a minute short
    d = decide(TORONTO, last, history=history)
    assert outcome(d) == ("BLOCK", "internal_dnc")
    assert "3 years and 14 days, until 2026-07-15T12:00" in d.detail
    d = decide(TORONTO, at("2026-07-15 12:00", "America/Toronto"), history=history)  # 3 years + 14 days: over
    assert outcome(d) == ("ALLOW", None)
    # Not the 3 years + 1 day of before.
    assert outcome(decide(TORONTO, at("2026-07-03 12:00", "America/Toronto"), history=history)) == \
        ("BLOCK", "internal_dnc")


def test_a_uk_objection_lasts_until_withdrawn() -> None:
    history = History(last_refusal=at("2016-01-05 12:00", "Europe/London"))
    d = decide(LONDON, at("2026-07-14 12:00", "Europe/London"), history=history)
    assert outcome(d) == ("BLOCK", "internal_dnc")
    assert "until withdrawn" in d.detail and "reg. 21(1)(a)" in d.detail
    # Withdrawn by the person's later consent to this caller's calls (reg. 21(4)), and by nothing else.
    refused = at("2016-01-05 12:00", "Europe/London")
    later = History(last_refusal=refused, consent_at=refused + timedelta(days=400))
    assert outcome(decide(LONDON, at("2026-07-14 12:00", "Europe/London"), history=later)) == ("ALLOW", None)
    earlier = History(last_refusal=refused, consent_at=refused - timedelta(days=1))
    assert outcome(decide(LONDON, at("2026-07-14 12:00", "Europe/London"), history=earlier)) == \
        ("BLOCK", "internal_dnc")


def test_a_us_request_lasts_five_years() -> None:
    history = History(last_refusal=at("2021-07-14 12:00", EASTERN))
    assert outcome(decide(NY, at("2026-07-14 11:59", EASTERN), history=history)) == ("BLOCK", "internal_dnc")
    assert outcome(decide(NY, at("2026-07-14 12:00", EASTERN), history=history)) == ("ALLOW", None)
    # A refusal recorded on 29 Feb is honoured to 28 Feb five years on at the least (calendar years).
    leap = History(last_refusal=at("2024-02-29 12:00", EASTERN))
    assert outcome(decide(NY, at("2029-02-28 11:00", EASTERN), history=leap, check_staleness=False)) == \
        ("BLOCK", "internal_dnc")


def test_the_store_keeps_refusals_as_long_as_the_packs_say() -> None:
    auto = Engine({"c": Campaign("c")}, lambda n, c: None).retention(PACKS)
    assert auto.refusals >= FOREVER  # the United Kingdom: until withdrawn
    ca = Engine({"c": Campaign("c", jurisdiction="CA")}, lambda n, c: None).retention(PACKS)
    assert ca.refusals >= timedelta(days=3 * 366 + 14) and ca.refusals < FOREVER
    fr = Engine({"c": Campaign("c", jurisdiction="FR")}, lambda n, c: None).retention(PACKS)
    assert fr.refusals < timedelta(days=365)  # France's 60 days (the stores' floor keeps 3 years anyway)


# -- zones -----------------------------------------------------------------------------------------------------

def test_448_is_judged_in_central_time_too() -> None:
    pensacola_0730 = at("2026-07-14 07:30", CENTRAL)  # 08:30 in Tallahassee
    assert outcome(decide("+14485550123", pensacola_0730)) == ("BLOCK", "outside_hours")
    assert outcome(decide("+14485550123", at("2026-07-14 08:00", CENTRAL))) == ("ALLOW", None)


def test_879_keeps_newfoundlands_zones_not_puerto_ricos() -> None:
    # A summer Saturday at 10:00 in Labrador (Atlantic daylight, UTC-3) is 09:00 in Puerto Rico's clock: legal
    # in Newfoundland and Labrador (10:00-18:00 on weekends), it must not be blocked by a zone nobody there keeps.
    saturday = at("2026-07-18 10:00", "America/Goose_Bay")
    assert outcome(decide("+18795550123", saturday)) == outcome(decide(NEWFOUNDLAND, saturday)) == ("ALLOW", None)


# -- states ----------------------------------------------------------------------------------------------------

def test_washington_ends_at_20() -> None:
    d = decide("+12065550123", at("2026-07-14 20:30", "America/Los_Angeles"))
    assert outcome(d) == ("BLOCK", "outside_hours")
    assert "after 20:00, Washington's end: RCW 19.158.040(2)" in d.detail


def test_a_florida_block_names_floridas_law() -> None:
    d = decide("+13055550124", at("2026-07-14 20:30", EASTERN))
    assert "after 20:00, Florida's end: Fla. Stat. 501.616(6)(a)" in d.detail


def test_a_federal_block_names_the_federal_rule() -> None:
    d = decide(NY, at("2026-07-14 21:15", EASTERN))
    assert "after 21:00" in d.detail and "64.1200(c)(1)" in d.detail


def test_louisiana_ends_at_20_unless_switched_off() -> None:
    tuesday_2030 = at("2026-07-14 20:30", CENTRAL)
    assert outcome(decide("+15045550123", tuesday_2030)) == ("BLOCK", "outside_hours")
    off = Settings.of(GatewaySection(unverified_state_rules_off=("LA",)))
    assert outcome(decide("+15045550123", tuesday_2030, settings=off)) == ("ALLOW", None)


@pytest.mark.parametrize("state_number", ["+12055550123", "+16015550123", "+12155550123", "+14015550123",
                                          "+18015550123"])
def test_reported_holiday_bans_are_on_by_default(state_number: str) -> None:
    zone = {"+18015550123": "America/Denver", "+12155550123": EASTERN, "+14015550123": EASTERN}.get(
        state_number, CENTRAL)
    christmas = at("2026-12-25 12:00", zone)
    assert outcome(decide(state_number, christmas, check_staleness=False)) == ("BLOCK", "public_holiday")


# -- Canada: surveys -------------------------------------------------------------------------------------------

def test_a_canadian_survey_is_held_neither_to_the_hours_nor_to_the_internal_list() -> None:
    late = at("2026-07-14 22:30", "America/Toronto")
    assert outcome(decide(TORONTO, late, category=Category.POLLING)) == ("ALLOW", "exempt_category")
    on_dnc = "+14165550200"  # on the internal list
    noon = at("2026-07-14 12:00", "America/Toronto")
    assert outcome(decide(on_dnc, noon, category=Category.POLLING)) == ("ALLOW", "exempt_category")
    assert outcome(decide(on_dnc, noon, category=Category.CHARITY)) == ("BLOCK", "internal_dnc")
    assert outcome(decide(TORONTO, late, category=Category.CHARITY)) == ("BLOCK", "outside_hours")
    # A US survey keeps the hours (only Canada's rules say surveys are not telemarketing).
    assert outcome(decide(NY, at("2026-07-14 22:30", EASTERN), category=Category.POLLING)) == \
        ("BLOCK", "outside_hours")


def test_a_us_list_keeps_the_laws_age_under_the_list_rules_alone() -> None:
    """A French campaign that lets other countries through on the list rules alone still screens a US number
    against a US list at most 31 days old."""
    lst = make_list("us_dnc", ListKind.OPPOSITION, [NY_LISTED], as_of=date(2026, 6, 1))
    d = decide(NY, at("2026-07-14 12:00", EASTERN), regs=registries(us_dnc=lst), jurisdiction="FR",
               unsupported_country="allow")
    assert outcome(d) == ("BLOCK", "registry_stale")


def test_floridas_cap_names_its_section() -> None:
    now = at("2026-07-14 12:00", EASTERN)
    d = decide("+13055550124", now, history=attempts(now, 1, 2, 3))
    assert outcome(d) == ("BLOCK", "frequency_cap")
    assert "Florida's cap, Fla. Stat. 501.616(6)(b)" in d.detail
