"""The precomputed decision path (plans, the minute's clock, memoised time-only verdicts) against the plain one.

An engine built with ``precompute=False`` computes every call's local times and every rule afresh; the default
engine shares the minute's clock between calls and memoises the hours and holiday verdicts per plan. Over a
seeded random corpus (numbers of France, its overseas regions, the United States with its states' rules, Canada,
the United Kingdom, toll-free numbers in every NANP zone; campaigns; instants around the DST switches, the
regime switch, public holidays and the hours' edges, to the second; histories) both give the same decisions.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from gateway.config import StaleAction
from gateway.numbers import Number
from gateway.policy.campaign import Campaign, Category, Mode, Regime, Sector, Unsupported
from gateway.policy.decision import Decision
from gateway.policy.engine import Call, Engine, Settings
from gateway.policy.packs import callee_law, home_law
from gateway.registry.model import ListKind, Registries
from gateway.state.model import EMPTY_HISTORY, History
from tests.policy import world

NUMBERS = [world.NY, world.NY_LISTED, world.FL, world.PANHANDLE, world.PHOENIX, world.NAVAJO, world.TORONTO,
           world.TORONTO_LISTED, world.NEWFOUNDLAND, world.LONDON, world.LONDON_LISTED, world.PARIS,
           world.PARIS_LISTED, world.BERLIN, "+12125550200", "+14165550200", "+442079460200",
           "+18005550123", "+18885550199",  # toll-free: every NANP zone
           "+14055550123", "+14105550123", "+17865550123",  # Oklahoma, Maryland, Florida: their own caps and hours
           "+262262123456", "+590590123456", "+596596123456", "+594594123456",  # overseas France
           "0612000001", "0612000009", "0612000100", "0899123456", "112", "3615", "not a number"]

# Instants the rules turn on: DST switches (US 8 Mar / 1 Nov 2026, EU 29 Mar / 25 Oct 2026), France's consent
# regime (11 Aug 2026), holidays (1 May, 14 Jul, 4 Jul, 25 Dec, Canada Day), New Year.
PIVOTS = [datetime(2026, 3, 8, 7, 0), datetime(2026, 3, 8, 10, 0), datetime(2026, 11, 1, 6, 0),
          datetime(2026, 11, 1, 9, 0), datetime(2026, 3, 29, 1, 0), datetime(2026, 10, 25, 1, 0),
          datetime(2026, 8, 10, 22, 0), datetime(2026, 5, 1, 12, 0), datetime(2026, 7, 14, 12, 0),
          datetime(2026, 7, 4, 16, 0), datetime(2026, 12, 25, 15, 0), datetime(2026, 7, 1, 15, 0),
          datetime(2026, 12, 31, 23, 0), datetime(2026, 7, 10, 12, 0), datetime(2026, 11, 24, 9, 0)]


def instants(rng: random.Random, n: int) -> list[datetime]:
    """Around each pivot: whole hours and the minutes either side of the hours' edges (xx:59, xx:00, xx:29,
    xx:30: Canada's 21:30), each drawn many times with its own second (the minute's clock and verdicts shared by
    calls of other numbers and campaigns, the second not)."""
    minutes = []
    for _ in range(max(1, n // 60)):
        base = rng.choice(PIVOTS).replace(tzinfo=UTC) + timedelta(hours=rng.randrange(-14, 15))
        minutes.append(base.replace(minute=rng.choice((0, 0, 29, 30, 59, rng.randrange(60)))))
    return [rng.choice(minutes).replace(second=rng.choice((0, 59, rng.randrange(60))),
                                        microsecond=rng.choice((0, 999_999))) for _ in range(n)]


def campaigns() -> list[Campaign]:
    base = world.BASE
    full = replace(base, consent="consent", customers="customers", inquiries="inquiries")
    return [
        base,
        full,
        replace(full, name="opp", regime=Regime.OPPOSITION),
        replace(full, name="cons", regime=Regime.CONSENT),
        replace(base, name="uk", industry_hours=True, lists=("gb_tps", "dnc")),
        replace(base, name="b2b", category=Category.B2B),
        replace(base, name="poll", category=Category.POLLING),
        replace(base, name="press", category=Category.PRESS, check_holidays=False),
        replace(base, name="mon", mode=Mode.MONITOR),
        replace(base, name="us", jurisdiction="US"),
        replace(base, name="any", unsupported_country=Unsupported.ALLOW),
        replace(full, name="energy", sector=Sector.ENERGY_RENOVATION),
        replace(full, name="home", sector=Sector.HOME_ADAPTATION, check_hours=False),
        replace(base, name="capped", max_attempts=2, window_days=7, cooldown_days=10),
        replace(base, name="capped3", max_attempts=3, window_days=30),  # a tie with Florida's 3 in 24 hours
        replace(base, name="capped9", max_attempts=9, window_days=30),
        replace(base, name="lists", lists=(*base.lists, "premium", "sued")),
        replace(base, name="lists_mon", lists=(*base.lists, "premium", "sued"), mode=Mode.MONITOR),
    ]


def histories(rng: random.Random, now: datetime) -> History:
    pick = rng.randrange(6)
    if pick == 0:
        return EMPTY_HISTORY
    ago = [timedelta(hours=rng.choice((1, 5, 20, 30, 200, 700))) for _ in range(rng.randrange(1, 6))]
    if pick == 1:
        return History(attempts=sorted(now - a for a in ago))
    if pick == 2:
        return History(attempts=sorted(now - a for a in ago), last_refusal=now - rng.choice(ago) * 3)
    if pick == 3:
        return History(last_refusal=now - timedelta(days=rng.choice((2, 59, 61, 400, 2000))))
    if pick == 4:
        return History(opted_out_at=now - timedelta(days=3))
    return History(last_refusal=now - timedelta(days=30), consent_at=now - timedelta(days=rng.choice((10, 40))))


def regs() -> Registries:
    dates = {"customers": {world.NORM.parse(world.NY_LISTED).key: date(2025, 6, 1)},
             "consent": {world.NORM.parse(world.PARIS).key: date(2026, 1, 5)}}
    return world.registries(dates=dates, premium=world.make_list("premium", ListKind.BLOCKED_PREFIXES,
                                                                 ["+1900", "0899", "+4420794601"]),
                            sued=world.make_list("sued", ListKind.LITIGATORS, [world.NY, world.LONDON]))


def corpus(seed: int, n: int) -> list[tuple[Call, History, datetime]]:
    rng = random.Random(seed)
    names = [c.name for c in campaigns()]
    out = []
    for now in instants(rng, n):
        number: Number = world.NORM.parse(rng.choice(NUMBERS))
        caller = rng.choice((None, None, None, "+33162000000", "anonymous", "0612345678"))
        out.append((Call(number, rng.choice(names), caller), histories(rng, now), now))
    return out


def engines(settings: Settings | None = None) -> tuple[Engine, Engine]:
    by_name = {c.name: c for c in campaigns()}
    return (Engine(by_name, callee_law(), settings), Engine(by_name, callee_law(), settings, precompute=False))


def test_the_precomputed_path_decides_as_the_plain_one() -> None:
    fast, plain = engines()
    lists = regs()
    calls = corpus(25, 6000)
    for call, history, now in calls + calls[::-1]:  # again in reverse: memoised by other calls of the minute
        got: Decision = fast.decide(call, lists, history, now)
        want = plain.decide(call, lists, history, now)
        assert got == want, (call.number.e164, call.campaign_name, now.isoformat())


def test_with_every_settings_switch() -> None:
    settings = Settings.of()
    settings = replace(settings, stale_action=StaleAction.WARN, alsace_moselle=True, overseas_holidays=False,
                       fallback_zone="America/Chicago",
                       unverified_state_rules_off=frozenset({"FL", "OK"}), home_country="GB")
    fast, plain = engines(settings)
    lists = regs()
    for call, history, now in corpus(7, 3000):
        assert fast.decide(call, lists, history, now) == plain.decide(call, lists, history, now)


def test_under_home_law_with_local_clocks() -> None:
    """French law for every call (the French suite's engine), instants given on local clocks, not UTC."""
    c = {c.name: c for c in campaigns()}
    fast, plain = Engine(c, home_law("FR")), Engine(c, home_law("FR"), precompute=False)
    lists = regs()
    for call, history, now in corpus(11, 2000):
        local = now.astimezone(world.at("2026-01-01 00:00", "Europe/Paris").tzinfo)
        assert fast.decide(call, lists, history, local) == plain.decide(call, lists, history, local)


def test_one_minute_shared_by_areas_of_one_zone() -> None:
    """Miami and New York share a zone and so the minute's clock, not their hours: at 20:30 Eastern a call to
    Florida is outside its hours (to 20:00) and one to New York is not (to 21:00), in either order."""
    fast = engines()[0]
    lists = regs()
    evening = datetime(2026, 7, 15, 0, 30, 15, tzinfo=UTC)
    miami, ny = world.NORM.parse("+17865550123"), world.NORM.parse(world.NY)
    for first, second in ((miami, ny), (ny, miami)):
        for number in (first, second):
            d = fast.decide(Call(number, "c"), lists, EMPTY_HISTORY, evening + timedelta(seconds=number.key % 40))
            assert str(d.reason) == ("outside_hours" if number is miami else "None"), d
        fast = engines()[0]


def test_a_new_snapshot_rebuilds_the_plan() -> None:
    """A list reloaded (a new Registries, as every reload makes) gets a new plan: what the old one compiled (its
    lists' members, versions, memoised verdicts) is not used for it."""
    engine = engines()[0]
    number = world.NORM.parse(world.NY)
    now = datetime(2026, 7, 14, 16, 0, tzinfo=UTC)
    before = regs()
    first = engine.decide(Call(number, "c"), before, EMPTY_HISTORY, now)
    assert str(first.verdict) == "ALLOW"
    campaign = engine.campaigns["c"]
    pack = callee_law()(number, campaign)
    assert pack is not None
    plan = engine.plan(campaign, before, pack)
    assert plan.timed  # the hours verdict of this minute was memoised
    after = world.registries(us_dnc=world.make_list("us_dnc", ListKind.OPPOSITION, [world.NY], max_age_days=31))
    second = engine.decide(Call(number, "c"), after, EMPTY_HISTORY, now)
    assert (str(second.verdict), str(second.reason)) == ("BLOCK", "opposition_list")
    assert engine.plan(campaign, after, pack) is not plan
    # And back: the old snapshot again is a new plan too (the cache holds one snapshot's plans).
    assert engine.decide(Call(number, "c"), before, EMPTY_HISTORY, now) == first


def test_a_new_config_is_a_new_engine_with_its_own_plans() -> None:
    """A config reload (SIGHUP) builds a new engine: a campaign changed by it is compiled afresh."""
    lists = regs()
    number = world.NORM.parse(world.NY)
    evening = datetime(2026, 7, 15, 0, 30, tzinfo=UTC)  # 20:30 in New York: within the US hours
    old = Engine({"c": world.BASE}, callee_law())
    assert str(old.decide(Call(number, "c"), lists, EMPTY_HISTORY, evening).verdict) == "ALLOW"
    new = Engine({"c": replace(world.BASE, jurisdiction="GB")}, callee_law())
    assert str(new.decide(Call(number, "c"), lists, EMPTY_HISTORY, evening).reason) == "no_jurisdiction"
    assert str(old.decide(Call(number, "c"), lists, EMPTY_HISTORY, evening).verdict) == "ALLOW"
