"""The French pack's calendar: L3133-1 holidays for any year (the holidays library), Easter-based ones included."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from gateway.policy import france
from gateway.policy.campaign import Category
from gateway.policy.france import public_holidays as french_holidays
from gateway.registry import sidestore
from gateway.values.campaign import Campaign
from gateway.values.gateway_section import GatewaySection

EASTER = {2024: date(2024, 3, 31), 2025: date(2025, 4, 20), 2026: date(2026, 4, 5), 2027: date(2027, 3, 28),
          2028: date(2028, 4, 16), 2029: date(2029, 4, 1), 2030: date(2030, 4, 21)}


@pytest.mark.parametrize(("year", "sunday"), EASTER.items())
def test_easter_based_holidays_2024_2030(year: int, sunday: date) -> None:
    days = french_holidays(year)
    assert sunday + timedelta(days=1) in days  # Easter Monday
    assert sunday + timedelta(days=39) in days  # Ascension (a Thursday)
    assert (sunday + timedelta(days=39)).isoweekday() == 4
    assert sunday + timedelta(days=50) in days  # Whit Monday
    assert sunday - timedelta(days=2) not in days  # Good Friday: Alsace-Moselle only
    assert sunday - timedelta(days=2) in french_holidays(year, "FR", alsace_moselle=True)


@pytest.mark.parametrize("year", range(2024, 2031))
def test_fixed_holidays(year: int) -> None:
    days = french_holidays(year)
    for m, d in ((1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)):
        assert date(year, m, d) in days
    assert len(days) == 11


@pytest.mark.parametrize(("region", "day"), [("RE", (12, 20)), ("YT", (4, 27)), ("GP", (5, 27)), ("MQ", (5, 22)),
                                             ("GF", (6, 10))])
def test_overseas_abolition_days(region: str, day: tuple[int, int]) -> None:
    assert date(2027, *day) in french_holidays(2027, region)
    assert date(2027, *day) not in french_holidays(2027, "FR")
    assert date(2027, *day) not in french_holidays(2027, region, overseas=False)


@pytest.mark.parametrize(("year", "sunday"), [(1961, date(1961, 4, 2)), (2038, date(2038, 4, 25))])
def test_easter_monday_far_away(year: int, sunday: date) -> None:
    assert sunday + timedelta(days=1) in french_holidays(year)


def test_the_layers_below_the_policy_write_out_frances_consent_numbers() -> None:
    # The consent lifetime and the proof keeping are France's law (décret 2026-662, reported): the pack holds them
    # with their source; the campaign value, the [gateway] table and the side store (below the policy, which they
    # cannot import) write the same numbers out as their defaults.
    assert france.PACK.consent_max_age_days == france.CONSENT_MAX_AGE_DAYS == Campaign("x").consent_max_age_days \
        == sidestore.MAX_AGE_DAYS
    assert france.PACK.consent_proof_years == france.CONSENT_PROOF_YEARS == GatewaySection().consent_proof_years \
        == sidestore.PROOF_YEARS
    for topic in ("consent_lifetime", "consent_proof"):
        assert france.PACK.cites[topic].verified is False  # reported, not read in the Journal officiel


def test_frances_exempt_categories_are_the_packs_own() -> None:
    assert france.PACK.exempt_categories == france.EXEMPT_CATEGORIES == {Category.PRESS, Category.POLLING,
                                                                          Category.CHARITY}
    assert "exempt_categories" in france.PACK.cites
