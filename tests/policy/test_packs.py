"""Which law judges a call: the callee's country picks the pack, or the campaign forces one (no_jurisdiction)."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.policy.campaign import Mode, Unsupported
from gateway.policy.decision import Reason
from gateway.policy.packs import PACKS, callee_law
from gateway.state.model import History

from .world import (
    BASE,
    BERLIN,
    LONDON,
    NORM,
    NY,
    PARIS,
    PARIS_LISTED,
    TORONTO,
    UTC,
    at,
    decide,
    outcome,
)

NOON_UTC = datetime(2026, 7, 14, 16, 0, tzinfo=UTC)  # 12:00 New York and Toronto, 17:00 London, 18:00 Paris


@pytest.mark.parametrize(
    ("number", "pack"),
    [
        (NY, "US"), (TORONTO, "CA"), (LONDON, "GB"), (PARIS, "FR"),
        ("+16045550123", "CA"),  # Vancouver: +1, Canadian by its area code
        ("+17875550123", "US"),  # Puerto Rico: US law
        ("+262692000001", "FR"), ("+262269610000", "FR"),  # Réunion, Mayotte
        ("+590590123456", "FR"), ("+594594123456", "FR"), ("+596596123456", "FR"),  # Guadeloupe, Guyane, Martinique
        ("+508411234", "FR"),  # Saint-Pierre-et-Miquelon
        (BERLIN, None), ("+18765550123", None),  # Germany; Jamaica shares +1 but has no pack
    ],
)
def test_auto_picks_the_callees_country(number: str, pack: str | None) -> None:
    num = NORM.parse(number)
    assert num.is_valid, number
    found = callee_law()(num, BASE)
    assert (found.country if found is not None else None) == pack


def test_a_forced_pack_judges_its_own_numbers_only() -> None:
    d = decide(NY, NOON_UTC, jurisdiction="US")
    assert (outcome(d), d.jurisdiction) == (("ALLOW", None), "US")
    d = decide(PARIS, NOON_UTC, jurisdiction="US")
    assert (outcome(d), d.rule, d.jurisdiction) == (("BLOCK", "no_jurisdiction"), "no_jurisdiction", None)
    assert "outside the campaign's jurisdiction US" in d.detail
    # Overseas France is France under a forced "FR".
    d = decide("+262692000001", at("2026-07-14 11:00", "Indian/Reunion"), jurisdiction="FR", lists=())
    assert d.jurisdiction == "FR"


def test_a_country_without_a_pack() -> None:
    d = decide(BERLIN, NOON_UTC)
    assert outcome(d) == ("BLOCK", "no_jurisdiction")
    assert "no jurisdiction pack for DE" in d.detail
    # Monitor mode: let through, marked.
    d = decide(BERLIN, NOON_UTC, mode=Mode.MONITOR)
    assert (str(d.verdict), d.reason, d.would_block) == ("ALLOW", "no_jurisdiction", True)


def test_unsupported_country_allow_applies_the_list_rules_only() -> None:
    allow = {"unsupported_country": Unsupported.ALLOW}
    night = datetime(2026, 7, 12, 1, 0, tzinfo=UTC)  # 3:00 on a Sunday in Berlin: no hours without a law
    d = decide(BERLIN, night, **allow)
    assert (outcome(d), d.jurisdiction) == (("ALLOW", None), None)
    assert set(d.lists) == {"dnc", "de_list"}  # the lists of no country and Germany's, no other country's
    assert outcome(decide("+4930123400", night, **allow)) == ("BLOCK", "opposition_list")
    assert outcome(decide("+4930123401", night, **allow)) == ("BLOCK", "internal_dnc")
    assert outcome(decide(BERLIN, night, history=History(opted_out_at=night), **allow)) == ("BLOCK", "internal_dnc")
    # A forced pack with "allow": a number of another country gets its own country's lists only.
    d = decide(PARIS_LISTED, night, jurisdiction="US", **allow)
    assert (outcome(d), d.jurisdiction) == (("BLOCK", "opposition_list"), None)


def test_no_jurisdiction_comes_right_after_unknown_campaign() -> None:
    order = list(Reason)
    assert order.index(Reason.NO_JURISDICTION) == order.index(Reason.UNKNOWN_CAMPAIGN) + 1
    # Emergency and invalid numbers are decided before any pack.
    assert outcome(decide(NORM.parse("112"), NOON_UTC, jurisdiction="US")) == ("ALLOW", "emergency")


def test_every_pack_is_registered() -> None:
    assert set(PACKS) == {"FR", "US", "CA", "GB"}
    for country, pack in PACKS.items():
        assert pack.country == country


def test_the_french_pack_still_judges_french_numbers() -> None:
    d = decide(PARIS, datetime(2026, 7, 14, 9, 0, tzinfo=UTC), consent="consent")  # 14 July: a French holiday
    assert (outcome(d), d.jurisdiction) == (("BLOCK", "public_holiday"), "FR")
