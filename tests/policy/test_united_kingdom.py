"""The United Kingdom pack (PECR reg. 21): TPS/CTPS unless consent to this caller, caller ID, no statutory hours."""

from __future__ import annotations

import pytest

from gateway.policy.campaign import Category

from .world import LONDON, LONDON_LISTED, at, decide, outcome

LONDON_TZ = "Europe/London"
NOON = at("2026-07-14 12:00", LONDON_TZ)


def test_the_tps_unless_consent_to_this_caller() -> None:
    d = decide(LONDON_LISTED, NOON)
    assert (outcome(d), d.jurisdiction) == (("BLOCK", "opposition_list"), "GB")
    d = decide(LONDON_LISTED, NOON, consent="consent")
    assert (outcome(d), d.basis) == (("ALLOW", None), "consent")


@pytest.mark.parametrize(
    ("campaign", "expected"),
    [
        ({"customers": "customers"}, ("BLOCK", "opposition_list")),  # no existing-customer exemption for calls
        ({"category": Category.CHARITY}, ("BLOCK", "opposition_list")),  # fundraising is direct marketing
        ({"category": Category.POLITICAL}, ("BLOCK", "opposition_list")),
        ({"category": Category.B2B}, ("BLOCK", "opposition_list")),  # the CTPS protects businesses
        ({"category": Category.POLLING}, ("ALLOW", "exempt_category")),  # market research is not marketing
    ],
)
def test_what_does_not_exempt(campaign: dict[str, object], expected: tuple[str, str | None]) -> None:
    assert outcome(decide(LONDON_LISTED, NOON, **campaign)) == expected


def test_caller_id_must_be_presented() -> None:
    d = decide(LONDON, NOON, caller_id="withheld")
    assert (outcome(d), d.rule) == (("BLOCK", "caller_id"), "caller_id.masked")


@pytest.mark.parametrize(
    ("local", "industry_hours", "expected"),
    [
        ("2026-07-12 23:00", False, ("ALLOW", None)),  # no statutory hours: a Sunday at 23:00
        ("2026-12-25 07:00", False, ("ALLOW", None)),  # nor holidays
        ("2026-07-12 23:00", True, ("BLOCK", "outside_hours")),  # the industry code's 8:00-21:00
        ("2026-07-14 07:59", True, ("BLOCK", "outside_hours")),
        ("2026-07-14 08:00", True, ("ALLOW", None)),
        ("2026-07-14 20:59", True, ("ALLOW", None)),
    ],
)
def test_hours_are_an_industry_option(local: str, industry_hours: bool, expected: tuple[str, str | None]) -> None:
    d = decide(LONDON, at(local, LONDON_TZ), lists=("dnc",), industry_hours=industry_hours)
    assert outcome(d) == expected
