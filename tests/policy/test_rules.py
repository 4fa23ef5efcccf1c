"""Each French rule alone, table-driven, with the clock injected (RULES.md § France)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.config import StaleAction
from gateway.numbers import Kind, Number
from gateway.policy.decision import Reason, Verdict
from gateway.policy.engine import Settings
from gateway.registry.model import ListKind
from gateway.state.model import History

from .helpers import BLOCTEL_ERA, NOW, PARIS, decide, make_list, registries


def at_paris(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=PARIS)


# --- regimes and lists --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("number", "at", "campaign", "verdict", "reason"),
    [
        # opposition regime (Bloctel era)
        ("0612000001", BLOCTEL_ERA, {}, "BLOCK", "opposition_list"),
        ("0612000005", BLOCTEL_ERA, {}, "ALLOW", None),
        ("0612000100", BLOCTEL_ERA, {}, "ALLOW", "exempt_contract"),  # listed, but a customer
        ("0612000001", BLOCTEL_ERA, {"category": "press"}, "ALLOW", "exempt_category"),
        ("0612000001", BLOCTEL_ERA, {"category": "polling"}, "ALLOW", "exempt_category"),
        ("0612000001", BLOCTEL_ERA, {"category": "charity"}, "ALLOW", "exempt_category"),
        ("0612000001", BLOCTEL_ERA, {"category": "b2b"}, "ALLOW", "exempt_b2b"),
        ("0612000001", BLOCTEL_ERA, {"regime": "none"}, "ALLOW", None),
        # consent regime (today)
        ("0612000009", NOW, {}, "ALLOW", None),
        ("0612000005", NOW, {}, "BLOCK", "no_consent"),
        ("0612000001", NOW, {}, "BLOCK", "no_consent"),  # Bloctel no longer matters, consent does
        ("0612000101", NOW, {}, "ALLOW", "exempt_contract"),
        ("0612000005", NOW, {"category": "press"}, "ALLOW", "exempt_category"),
        ("0612000400", NOW, {}, "ALLOW", "exempt_b2b"),  # on the professional-numbers list
        ("0612000005", NOW, {"consent": ""}, "BLOCK", "no_consent"),  # no consent list at all
        ("0612000009", NOW, {"regime": "opposition"}, "ALLOW", None),
        ("0612000001", NOW, {"regime": "opposition"}, "BLOCK", "opposition_list"),
        # always-on lists
        ("0612000200", NOW, {}, "BLOCK", "internal_dnc"),
        ("0612000200", NOW, {"category": "b2b"}, "BLOCK", "internal_dnc"),
        ("0612000300", NOW, {}, "BLOCK", "litigator"),
        ("0899123456", NOW, {"category": "press"}, "BLOCK", "blocked_prefix"),
        ("+19005551234", NOW, {"category": "press", "check_hours": False}, "BLOCK", "blocked_prefix"),
    ],
)
def test_list_rules(number: str, at: datetime, campaign: dict[str, object], verdict: str, reason: str | None) -> None:
    d = decide(number, at=at, **campaign)
    assert (d.verdict, d.reason) == (verdict, reason), d.detail


def test_consent_withdrawn_by_refusal_until_new_consent() -> None:
    refused = History(last_refusal=datetime(2026, 9, 1, 10, tzinfo=UTC))
    d = decide("0612000009", history=refused)
    assert (d.verdict, d.reason, d.rule) == ("BLOCK", "no_consent", "no_consent.withdrawn")
    regs = registries()
    newer = type(regs)(regs.lists, {"consent": {NOW and 33612000009: date(2026, 10, 1)}}, regs.kinds)
    d = decide("0612000009", history=refused, regs=newer)
    assert d.verdict == "ALLOW"


def test_contract_exempt_call_still_has_the_refusal_cooldown() -> None:
    refused = History(last_refusal=NOW - timedelta(days=10))
    assert decide("0612000101", history=refused).reason == "refusal_cooldown"


# --- sector bans --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("sector", "at", "number", "campaign", "verdict", "reason"),
    [
        ("energy_renovation", NOW, "0612000009", {}, "BLOCK", "sector_ban"),
        ("energy_renovation", BLOCTEL_ERA, "0612000005", {}, "BLOCK", "sector_ban"),
        ("energy_renovation", NOW, "0612000009", {"category": "b2b"}, "ALLOW", "exempt_b2b"),
        ("energy_renovation", NOW, "0612000101", {}, "ALLOW", "exempt_contract"),
        ("home_adaptation", NOW, "0612000009", {}, "BLOCK", "sector_ban"),
        ("home_adaptation", BLOCTEL_ERA, "0612000005", {}, "ALLOW", None),  # banned from 11 Aug 2026
    ],
)
def test_sector_ban(sector: str, at: datetime, number: str, campaign: dict[str, object], verdict: str,
                    reason: str | None) -> None:
    d = decide(number, at=at, sector=sector, **campaign)
    assert (d.verdict, d.reason) == (verdict, reason)


# --- caller ID ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("caller_id", "campaign", "ok", "rule"),
    [
        ("0162000000", {}, True, ""),
        ("+33162000000", {}, True, ""),
        ("0948000000", {}, True, ""),
        ("0947512345", {}, True, ""),  # overseas verified range 09475-09479
        ("0947412345", {}, False, "caller_id.not_verified"),
        ("", {}, False, "caller_id.masked"),
        ("anonymous", {}, False, "caller_id.masked"),
        ("0612345678", {}, False, "caller_id.not_verified"),  # never a mobile for an automated dialler
        ("0899000000", {}, False, "caller_id.not_verified"),
        ("0144000000", {}, False, "caller_id.not_verified"),
        ("0144000000", {"automated": False}, True, ""),
        ("3949", {"automated": False}, False, "caller_id.invalid"),
        ("abc", {"automated": False}, False, "caller_id.invalid"),
        ("0162000001", {"owned_caller_ids": ("0162000000",)}, False, "caller_id.not_owned"),
        ("0162000000", {"owned_caller_ids": ("+33162000000",)}, True, ""),
        ("", {"check_caller_id": False}, True, ""),
    ],
)
def test_caller_id(caller_id: str, campaign: dict[str, object], ok: bool, rule: str) -> None:
    d = decide("0612000009", caller_id=caller_id, **campaign)
    if ok:
        assert d.verdict == "ALLOW", d.detail
    else:
        assert (d.verdict, d.reason, d.rule) == ("BLOCK", "caller_id", rule)


# --- staleness ----------------------------------------------------------------------------------

def test_stale_opposition_list_blocks_in_the_opposition_regime_only() -> None:
    old = make_list("bloctel", ListKind.OPPOSITION, ["0612000001"], as_of=date(2026, 1, 1), max_age_days=30)
    regs = registries(bloctel=old)
    d = decide("0612000005", at=BLOCTEL_ERA, regs=regs)
    assert (d.verdict, d.reason) == ("BLOCK", "registry_stale")
    assert "68 days old" in d.detail
    # under the consent regime Bloctel is not consulted: its age does not matter
    assert decide("0612000009", regs=regs).verdict == "ALLOW"
    # nor for an exempt campaign
    assert decide("0612000005", at=BLOCTEL_ERA, regs=regs, category="press").verdict == "ALLOW"
    # staleness can be switched to a warning
    d = decide("0612000005", at=BLOCTEL_ERA, regs=regs, settings=replace(Settings.of(), stale_action=StaleAction.WARN))
    assert d.verdict == "ALLOW" and d.warnings and "days old" in d.warnings[0]


def test_fresh_list_at_the_limit_and_one_day_past() -> None:
    lst = make_list("bloctel", ListKind.OPPOSITION, ["0612000001"], as_of=date(2026, 2, 8), max_age_days=30)
    assert decide("0612000005", at=BLOCTEL_ERA, regs=registries(bloctel=lst)).verdict == "ALLOW"  # 30 days
    lst = make_list("bloctel", ListKind.OPPOSITION, ["0612000001"], as_of=date(2026, 2, 7), max_age_days=30)
    assert decide("0612000005", at=BLOCTEL_ERA, regs=registries(bloctel=lst)).reason == "registry_stale"


def test_missing_or_undated_list_is_stale() -> None:
    d = decide("0612000005", at=BLOCTEL_ERA, regs=registries(bloctel=None))
    assert (d.reason, d.lists["bloctel"]) == ("registry_stale", "missing")
    undated = make_list("bloctel", ListKind.OPPOSITION, [], as_of=None, max_age_days=30)
    assert decide("0612000005", at=BLOCTEL_ERA, regs=registries(bloctel=undated)).reason == "registry_stale"
    missing_consent = decide("0612000009", regs=registries(consent=None))
    assert missing_consent.reason == "registry_stale"
    assert decide("0612000009", regs=registries(consent=None), check_staleness=False).reason == "no_consent"


# --- refusal cooldown and frequency cap ---------------------------------------------------------

@pytest.mark.parametrize(
    ("refused_on", "blocked"),
    [
        (date(2026, 11, 24), True),  # today
        (date(2026, 9, 25), True),  # 25 Sep + 60 = 24 Nov: the 60th full day is today
        (date(2026, 9, 24), False),  # 24 Sep + 61 = 24 Nov: the first day allowed again
        (date(2026, 9, 23), False),
        (date(2025, 1, 1), False),
    ],
)
def test_refusal_cooldown(refused_on: date, blocked: bool) -> None:
    history = History(last_refusal=datetime(refused_on.year, refused_on.month, refused_on.day, 15, tzinfo=PARIS))
    # contract-exempt so that the consent regime's permanent withdrawal does not hide the cooldown
    d = decide("0612000101", history=history)
    assert (d.reason == "refusal_cooldown") is blocked, d.detail


def test_refusal_cooldown_does_not_apply_to_b2b() -> None:
    history = History(last_refusal=NOW - timedelta(days=1))
    assert decide("0612000009", history=history, category="b2b").verdict == "ALLOW"


def _attempts(*days_ago: int) -> History:
    return History(attempts=tuple(sorted(NOW - timedelta(days=d, hours=1) for d in days_ago)))


@pytest.mark.parametrize(
    ("days_ago", "blocked"),
    [
        ((), False),
        ((1, 2, 3), False),
        ((0, 1, 2, 3), True),
        ((1, 5, 10, 29), True),  # 29 days ago is within the 30 calendar days
        ((1, 5, 10, 30), False),  # 30 days ago is not
        ((40, 50, 60, 70, 80), False),
    ],
)
def test_frequency_cap(days_ago: tuple[int, ...], blocked: bool) -> None:
    d = decide("0612000009", history=_attempts(*days_ago))
    assert (d.reason == "frequency_cap") is blocked, d.detail


def test_frequency_cap_is_configurable_and_switchable() -> None:
    assert decide("0612000009", history=_attempts(1, 2), max_attempts=2).reason == "frequency_cap"
    assert decide("0612000009", history=_attempts(0, 1, 2, 3), check_frequency=False).verdict == "ALLOW"


# --- days and hours -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("at", "verdict", "reason"),
    [
        (at_paris(2026, 11, 24, 9, 59), "BLOCK", "outside_hours"),
        (at_paris(2026, 11, 24, 10, 0), "ALLOW", None),
        (at_paris(2026, 11, 24, 12, 59), "ALLOW", None),
        (at_paris(2026, 11, 24, 13, 0), "BLOCK", "outside_hours"),
        (at_paris(2026, 11, 24, 13, 59), "BLOCK", "outside_hours"),
        (at_paris(2026, 11, 24, 14, 0), "ALLOW", None),
        (at_paris(2026, 11, 24, 19, 59), "ALLOW", None),
        (at_paris(2026, 11, 24, 20, 0), "BLOCK", "outside_hours"),
        (at_paris(2026, 11, 28, 11, 0), "BLOCK", "outside_hours"),  # Saturday
        (at_paris(2026, 11, 29, 11, 0), "BLOCK", "outside_hours"),  # Sunday
        (at_paris(2026, 11, 11, 11, 0), "BLOCK", "public_holiday"),  # Armistice, a Wednesday
        (at_paris(2026, 12, 25, 11, 0), "BLOCK", "public_holiday"),
        (at_paris(2026, 5, 14, 11, 0), "BLOCK", "public_holiday"),  # Ascension
    ],
)
def test_hours_and_days(at: datetime, verdict: str, reason: str | None) -> None:
    d = decide("0612000009", at=at)
    assert (d.verdict, d.reason) == (verdict, reason), d.detail


def test_hours_rules_switch_off() -> None:
    assert decide("0612000009", at=at_paris(2026, 11, 28, 8, 0), check_hours=False).verdict == "ALLOW"
    assert decide("0612000009", at=at_paris(2026, 12, 25, 11, 0), check_holidays=False).verdict == "ALLOW"


@pytest.mark.parametrize(
    ("utc", "verdict"),
    [
        # DST starts Sunday 29 Mar 2026: the same UTC time is 09:30 on Friday and 11:30 on Monday.
        (datetime(2026, 3, 27, 8, 30, tzinfo=UTC), "BLOCK"),
        (datetime(2026, 3, 30, 8, 30, tzinfo=UTC), "ALLOW"),
        # DST ends Sunday 25 Oct 2026: 10:30 on Friday, 09:30 on Monday.
        (datetime(2026, 10, 23, 8, 30, tzinfo=UTC), "ALLOW"),
        (datetime(2026, 10, 26, 8, 30, tzinfo=UTC), "BLOCK"),
        # 19:30 UTC is 20:30 CET (blocked) and 21:30 CEST (blocked); 18:30 UTC in winter is 19:30 (allowed)
        (datetime(2026, 11, 24, 18, 30, tzinfo=UTC), "ALLOW"),
        (datetime(2026, 6, 23, 18, 30, tzinfo=UTC), "BLOCK"),
    ],
)
def test_dst_transitions(utc: datetime, verdict: str) -> None:
    assert decide("0612000009", at=utc, regime="none").verdict == verdict


@pytest.mark.parametrize(
    ("number", "zone", "region"),
    [
        ("0692000009", "Indian/Reunion", "RE"),
        ("0639000009", "Indian/Mayotte", "YT"),
        ("0590000009", "America/Guadeloupe", "GP"),
        ("0594000009", "America/Cayenne", "GF"),
        ("0596000009", "America/Martinique", "MQ"),
        ("+508411234", "America/Miquelon", "PM"),
    ],
)
def test_every_overseas_zone_uses_the_callees_clock(number: str, zone: str, region: str) -> None:
    tz = ZoneInfo(zone)
    for hour, verdict in ((9, "BLOCK"), (11, "ALLOW"), (13, "BLOCK"), (15, "ALLOW"), (20, "BLOCK")):
        at = datetime(2026, 11, 24, hour, 30, tzinfo=tz)
        d = decide(number, at=at, regime="none")
        assert d.verdict == verdict, (number, hour, d.detail)


def test_overseas_abolition_day_is_a_holiday_there_only() -> None:
    # 20 Dec 2027 is a Monday: a holiday in Réunion, a working day in Paris.
    re_at = datetime(2027, 12, 20, 11, 0, tzinfo=ZoneInfo("Indian/Reunion"))
    assert decide("0692000009", at=re_at, regime="none").reason == "public_holiday"
    assert decide("0612000009", at=datetime(2027, 12, 20, 11, 0, tzinfo=PARIS), regime="none").verdict == "ALLOW"


def test_alsace_moselle_days_are_configurable() -> None:
    good_friday = at_paris(2026, 4, 3, 11, 0)
    assert decide("0612000009", at=good_friday, regime="none").verdict == "ALLOW"
    d = decide("0612000009", at=good_friday, regime="none", settings=replace(Settings.of(), alsace_moselle=True))
    assert d.reason == "public_holiday"


def test_overseas_abolition_days_are_a_setting() -> None:
    """RULES.md marks the overseas abolition days unverified as canvassing bans: on by default, a setting."""
    abolition = datetime(2027, 5, 27, 15, 0, tzinfo=UTC)  # Thursday 27 May 2027, 11:00 in Guadeloupe
    assert decide("0590000009", at=abolition, regime="none").reason == "public_holiday"
    off = replace(Settings.of(), overseas_holidays=False)
    assert decide("0590000009", at=abolition, regime="none", settings=off).verdict == "ALLOW"


def test_several_possible_zones_must_all_be_legal() -> None:
    both = Number(262692000009, "+262692000009", "RE", Kind.MOBILE, ("Indian/Mayotte", "Indian/Reunion"))
    # 09:15 UTC: 12:15 in Mayotte (legal), 13:15 in Réunion (lunch break)
    at = datetime(2026, 11, 24, 9, 15, tzinfo=UTC)
    d = decide(both, at=at, regime="none")
    assert (d.verdict, d.reason) == ("BLOCK", "outside_hours")
    assert "Reunion" in d.detail
    # 07:30 UTC: 10:30 Mayotte, 11:30 Réunion: legal in both
    assert decide(both, at=datetime(2026, 11, 24, 7, 30, tzinfo=UTC), regime="none").verdict == "ALLOW"


# --- the 11 Aug 2026 switch ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("number", "utc", "regime"),
    [
        ("0612000005", datetime(2026, 8, 10, 21, 59, tzinfo=UTC), "opposition"),  # 23:59 in Paris
        ("0612000005", datetime(2026, 8, 10, 22, 0, tzinfo=UTC), "consent"),  # midnight in Paris
        # 20:30 UTC on 10 Aug: still 10 Aug in Paris, already 11 Aug in Réunion (UTC+4)
        ("0692000001", datetime(2026, 8, 10, 20, 30, tzinfo=UTC), "consent"),
        ("0612000005", datetime(2026, 8, 10, 20, 30, tzinfo=UTC), "opposition"),
        ("0590000009", datetime(2026, 8, 11, 3, 59, tzinfo=UTC), "opposition"),  # 23:59 in Guadeloupe
        ("0590000009", datetime(2026, 8, 11, 4, 0, tzinfo=UTC), "consent"),
    ],
)
def test_regime_switches_at_midnight_in_the_callees_zone(number: str, utc: datetime, regime: str) -> None:
    d = decide(number, at=utc, check_hours=False, check_holidays=False)
    assert d.regime == regime


def test_regime_before_bloctel_existed() -> None:
    assert decide("0612000001", at=at_paris(2015, 3, 10, 11)).regime == "none"


def test_unverified_mobile_is_fine_as_callee() -> None:
    assert decide("0712000009", check_staleness=False, consent="").reason == "no_consent"


def test_verdict_values_are_the_contract_strings() -> None:
    d = decide("0612000009")
    assert d.verdict is Verdict.ALLOW and str(d.verdict) == "ALLOW"
    assert {r.value for r in Reason} >= {
        "emergency", "exempt_contract", "exempt_category", "exempt_b2b", "opposition_list", "no_consent",
        "internal_dnc", "litigator", "blocked_prefix", "refusal_cooldown", "frequency_cap", "outside_hours",
        "public_holiday", "invalid_number", "caller_id", "sector_ban", "registry_stale", "unknown_campaign"}
