"""The engine: precedence of every pair of rules (DESIGN §7), monitor mode, purity, explanations."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from gateway.policy.engine import Call, Engine
from gateway.policy.packs import for_country, home_law
from gateway.registry.model import ListKind, Registries, RegistryList
from gateway.state.model import EMPTY_HISTORY, History

from .helpers import BASE, BLOCTEL_ERA, NORM, NOW, PARIS, decide, key, make_list, registries

TUESDAY = datetime(2026, 3, 10, 11, 0, tzinfo=PARIS)  # opposition regime, legal time
N = "0612000009"


@dataclass
class World:
    campaign: dict[str, Any] = field(default_factory=dict)
    lists: dict[str, RegistryList] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    at: datetime = TUESDAY
    caller_id: str | None = None


def _sector(w: World) -> None:
    w.campaign["sector"] = "energy_renovation"


def _caller(w: World) -> None:
    w.caller_id = "anonymous"


def _stale(w: World) -> None:
    old = w.lists.get("bloctel")
    nums = ["0612000001"] if old is None else [N]
    w.lists["bloctel"] = make_list("bloctel", ListKind.OPPOSITION, nums, as_of=date(2025, 1, 1), max_age_days=30)


def _opposition(w: World) -> None:
    stale = "bloctel" in w.lists and w.lists["bloctel"].meta.as_of == date(2025, 1, 1)
    w.lists["bloctel"] = make_list("bloctel", ListKind.OPPOSITION, [N], as_of=date(2025, 1, 1) if stale else
                                   w.at.date(), max_age_days=30)


def _dnc(w: World) -> None:
    w.lists["dnc"] = make_list("dnc", ListKind.INTERNAL_DNC, [N])


def _litigator(w: World) -> None:
    w.lists["litigators"] = make_list("litigators", ListKind.LITIGATORS, [N])


def _prefix(w: World) -> None:
    w.lists["premium"] = make_list("premium", ListKind.BLOCKED_PREFIXES, ["06120000"])


def _cooldown(w: World) -> None:
    w.history["last_refusal"] = w.at - timedelta(days=3)


def _cap(w: World) -> None:
    w.history["attempts"] = tuple(w.at - timedelta(days=d) for d in (4, 3, 2, 1))


def _holiday(w: World) -> None:
    w.at = w.at.replace(month=5, day=1)  # Friday 1 May 2026


def _hours(w: World) -> None:
    w.at = w.at.replace(hour=21)


# In precedence order (DESIGN §7), after emergency / invalid_number / unknown_campaign.
TRIGGERS = [
    ("sector_ban", _sector), ("caller_id", _caller), ("registry_stale", _stale), ("opposition_list", _opposition),
    ("internal_dnc", _dnc), ("litigator", _litigator), ("blocked_prefix", _prefix),
    ("refusal_cooldown", _cooldown), ("frequency_cap", _cap), ("public_holiday", _holiday),
    ("outside_hours", _hours),
]


def _run(world: World, number: str = N, campaign_name: str | None = None) -> Any:
    regs = registries(**world.lists)
    history = History(**world.history)
    return decide(number, at=world.at, history=history, regs=regs, caller_id=world.caller_id,
                  campaign_name=campaign_name, regime="opposition", **world.campaign)


@pytest.mark.parametrize(("reason", "trigger"), TRIGGERS, ids=[t[0] for t in TRIGGERS])
def test_each_trigger_alone(reason: str, trigger: Any) -> None:
    w = World()
    trigger(w)
    d = _run(w)
    assert (d.verdict, d.reason) == ("BLOCK", reason), d.detail


PAIRS = list(itertools.combinations(TRIGGERS, 2))


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=[f"{a[0]}>{b[0]}" for a, b in PAIRS])
def test_precedence_of_every_pair(first: tuple[str, Any], second: tuple[str, Any]) -> None:
    # apply the lower-precedence trigger first, so that neither can hide the other by construction
    w = World()
    second[1](w)
    first[1](w)
    d = _run(w)
    assert d.reason == first[0], f"{first[0]} should win over {second[0]}, got {d.reason}: {d.detail}"


def test_everything_at_once_still_allows_emergency_numbers() -> None:
    w = World()
    for _, trigger in TRIGGERS:
        trigger(w)
    for short in ("15", "17", "18", "112", "114", "115", "119", "191", "196", "197", "3949"):
        d = _run(w, short)
        assert (d.verdict, d.reason, d.would_block) == ("ALLOW", "emergency", False), short
        d = _run(w, short, campaign_name="no-such-campaign")
        assert d.verdict == "ALLOW"


def test_invalid_number_before_unknown_campaign_before_the_rules() -> None:
    w = World()
    for _, trigger in TRIGGERS:
        trigger(w)
    assert _run(w, "06123", campaign_name="nope").reason == "invalid_number"
    assert _run(w, N, campaign_name="nope").reason == "unknown_campaign"
    assert _run(w, N).reason == "sector_ban"


def test_monitor_mode_allows_and_says_what_would_have_blocked() -> None:
    d = decide("0612000005", mode="monitor")
    assert (d.verdict, d.reason, d.would_block, d.counts_attempt) == ("ALLOW", "no_consent", True, True)
    d = decide("0612000009", mode="monitor")
    assert (d.verdict, d.reason, d.would_block) == ("ALLOW", None, False)


def test_decision_names_the_rule_and_list_versions() -> None:
    d = decide("0612000200")
    assert d.rule == "internal_dnc" and "dnc" in d.detail
    assert set(d.lists) == {"dnc", "litigators", "premium", "pros", "consent", "customers"}
    assert all(v.startswith("2026-11-20:") for v in d.lists.values())
    j = d.as_json()
    assert list(j)[:6] == ["verdict", "reason", "would_block", "number", "rule", "lists"]
    assert j["number"] == "+33612000200"


def test_decide_is_pure_and_needs_an_aware_clock() -> None:
    engine = Engine({"c": BASE}, home_law("FR"))
    regs = registries()
    call = Call(NORM.parse(N), "c")
    at = datetime(2026, 11, 24, 10, 30, tzinfo=PARIS)
    assert engine.decide(call, regs, EMPTY_HISTORY, at) == engine.decide(call, regs, EMPTY_HISTORY, at)
    with pytest.raises(ValueError, match="aware"):
        engine.decide(call, regs, EMPTY_HISTORY, at.replace(tzinfo=None))


def test_plan_cache_follows_the_snapshot() -> None:
    engine = Engine({"c": BASE}, home_law("FR"))
    call = Call(NORM.parse("0612000005"), "c")
    at = datetime(2026, 11, 24, 10, 30, tzinfo=PARIS)
    assert engine.decide(call, registries(), EMPTY_HISTORY, at).reason == "no_consent"
    more = registries(consent=make_list("consent", ListKind.CONSENT, ["0612000005"]))
    assert engine.decide(call, more, EMPTY_HISTORY, at).verdict == "ALLOW"


def test_unknown_jurisdiction_is_a_clear_error() -> None:
    with pytest.raises(LookupError, match="no jurisdiction pack for 'ZZ'"):
        for_country("ZZ")


@pytest.mark.parametrize(("number", "campaign", "at", "basis", "detail"), [
    ("0612000009", {}, NOW, "consent_undated", "prior consent on the list 'consent', undated"),
    ("0612000100", {}, NOW, "exempt_contract", "existing contract: on the customers list 'customers'"),
    ("0612000400", {}, NOW, "exempt_b2b", "a call to a professional"),
    ("0612000009", {"category": "press"}, NOW, "exempt_category", "press calls are exempt from the consent rule"),
    ("0612000077", {}, BLOCTEL_ERA, "not_listed", "not on the opposition lists consulted ('bloctel')"),
    ("0612000077", {"regime": "none"}, NOW, "no_list_applies", "no list regime applies (none)"),
    ("112", {}, NOW, "emergency", "emergency and short numbers are never blocked"),
])
def test_an_allow_names_its_basis(number: str, campaign: dict[str, object], at: datetime, basis: str,
                                  detail: str) -> None:
    """Issue 15 #12: an ALLOW said only "no rule blocks this call"; now it says on what it rests."""
    d = decide(number, at=at, **campaign)
    assert (d.verdict, d.basis) == ("ALLOW", basis)
    assert d.detail.startswith(detail)
    j = d.as_json()
    assert j["basis"] == basis and j["reason"] == (d.reason and str(d.reason))


def test_a_block_has_no_basis_and_a_consent_date_is_named() -> None:
    assert decide("0612000001", at=BLOCTEL_ERA).as_json()["basis"] is None
    regs = registries()
    dated = Registries(regs.lists, {"consent": {key("0612000009"): date(2026, 9, 1)}}, kinds=regs.kinds)
    assert decide("0612000009", regs=dated).detail == \
        "prior consent on the list 'consent', given on 2026-09-01, valid until 2027-08-31"
