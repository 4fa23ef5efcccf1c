"""The engine's statement of what a decision depends on, and the two readers that cache by it (scrub, offline
replay): a number decided from a signature gets exactly the engine's own decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from gateway.policy.depends import HISTORY_RULES, consulted_lists, list_dates, number_signature
from gateway.policy.engine import Engine
from gateway.policy.packs import callee_law
from gateway.registry.model import ListKind, Registries
from gateway.replay.offline import OfflineDecider
from gateway.replay.trace import Call
from gateway.scrub import Screener
from gateway.state.model import EMPTY_HISTORY, History

from .helpers import key
from .world import BASE, NORM, NY_LISTED, at, decide, make_list, outcome, registries

NOON = at("2026-07-14 12:00", "America/New_York")
NY_OTHER = "+12125550111"  # on the US National DNC, not an inquiry: the same signature as NY_LISTED
NY_OLD = "+12125550112"  # an inquiry, 100 days old


def world(dated: bool) -> tuple[Engine, Registries]:
    c = replace(BASE, inquiries="inquiries")
    dates: dict[str, dict[int, date]] = {}
    if dated:
        dates = {"inquiries": {key(NY_LISTED): NOON.date() - timedelta(days=80),
                               key(NY_OLD): NOON.date() - timedelta(days=100)}}
    regs = registries(dates=dates, us_dnc=make_list("us_dnc", ListKind.OPPOSITION, [NY_LISTED, NY_OTHER, NY_OLD]),
                      inquiries=make_list("inquiries", ListKind.CUSTOMERS, [NY_LISTED, NY_OLD]))
    return Engine({c.name: c}, callee_law(), None), regs


def test_the_statement() -> None:
    c = replace(BASE, consent="consent", customers="customers", inquiries="inquiries")
    assert set(consulted_lists(c)) == {*BASE.lists, "consent", "customers", "inquiries"}
    assert number_signature(NORM.parse(NY_LISTED)) == number_signature(NORM.parse(NY_OTHER))
    _, regs = world(dated=True)
    assert list_dates(regs, ("us_dnc", "inquiries"), key(NY_OLD)) == (NOON.date() - timedelta(days=100),)
    assert "internal_dnc.optout" in HISTORY_RULES
    optout = decide(NY_OTHER, NOON, history=History(opted_out_at=NOON - timedelta(days=1)))
    assert optout.rule in HISTORY_RULES and decide(NY_OTHER, NOON, history=EMPTY_HISTORY).rule not in HISTORY_RULES


def expected(engine: Engine, regs: Registries, number: str) -> tuple[str, str | None]:
    from gateway.policy.engine import Call as EngineCall

    return outcome(engine.decide(EngineCall(NORM.parse(number), "c"), regs, EMPTY_HISTORY, NOON))


def test_scrub_reads_every_list_the_engine_reads_and_the_dates() -> None:
    """The inquiries list was left out of the screener's own statement: a number it exempts got the decision of
    another number of its signature; a dated list's members were served one another's decisions."""
    for dated, numbers in ((False, (NY_OTHER, NY_LISTED)), (True, (NY_LISTED, NY_OLD, NY_OTHER))):
        engine, regs = world(dated)
        screener = Screener(engine, regs, NORM, "c", NOON)
        answers = [outcome(screener.decide(NORM.parse(n))) for n in numbers]
        assert answers == [expected(engine, regs, n) for n in numbers]
    assert answers == [("ALLOW", "exempt_contract"), ("BLOCK", "opposition_list"), ("BLOCK", "opposition_list")]


def test_offline_replay_reads_every_list_the_engine_reads_and_the_dates() -> None:
    for dated, numbers in ((False, (NY_OTHER, NY_LISTED)), (True, (NY_LISTED, NY_OLD, NY_OTHER))):
        engine, regs = world(dated)
        for shortcut in ("decide", "run"):
            decider = OfflineDecider(engine, regs, NORM, "p")
            calls = [Call(n, "c", at=NOON.timestamp() + i) for i, n in enumerate(numbers)]
            if shortcut == "decide":
                answers = [outcome(decider.decide(c, c.at or 0.0)) for c in calls]
            else:
                results = decider.run(calls, range(len(calls)), [c.at or 0.0 for c in calls])
                answers = [(str(r.verdict), str(r.reason) or None) for r in results if r is not None]
            assert answers == [expected(engine, regs, n) for n in numbers], (dated, shortcut)
