"""A small world for rule tests: lists built in memory, campaigns built per test, the clock passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pyroaring import FrozenBitMap64

from gateway.numbers import Normaliser, Number
from gateway.policy.campaign import Campaign
from gateway.policy.decision import Decision
from gateway.policy.engine import Call, Engine, Settings
from gateway.policy.packs import home_law
from gateway.registry.loaders import parse_prefix
from gateway.registry.model import KeyRanges, ListKind, ListMeta, Registries, RegistryList
from gateway.state.model import EMPTY_HISTORY, History

NORM = Normaliser("FR")
PARIS = ZoneInfo("Europe/Paris")


def key(n: str) -> int:
    return NORM.parse(n).key


def make_list(name: str, kind: ListKind, numbers: list[str], as_of: date | None = date(2026, 11, 20),
              max_age_days: int | None = None) -> RegistryList:
    if kind is ListKind.BLOCKED_PREFIXES:
        members: FrozenBitMap64 | KeyRanges = KeyRanges(iv for p in numbers for iv in parse_prefix(p, NORM) or [])
    else:
        members = FrozenBitMap64([key(n) for n in numbers])
    return RegistryList(ListMeta(name, kind, "test", as_of, len(numbers), "0" * 64, max_age_days), members)


BLOCTEL = ["0612000001", "0612000002", "0692000001", "0612000100"]
CONSENT = ["0612000009", "0612000010", "0692000009", "0639000009", "0590000009", "0594000009", "0596000009",
           "0612000100", "0612000300", "0612000200"]


def registries(**overrides: RegistryList | None) -> Registries:
    lists = {
        "bloctel": make_list("bloctel", ListKind.OPPOSITION, BLOCTEL, max_age_days=30),
        "consent": make_list("consent", ListKind.CONSENT, CONSENT),
        "customers": make_list("customers", ListKind.CUSTOMERS, ["0612000100", "0612000101"]),
        "dnc": make_list("dnc", ListKind.INTERNAL_DNC, ["0612000200"]),
        "litigators": make_list("litigators", ListKind.LITIGATORS, ["0612000300"]),
        "premium": make_list("premium", ListKind.BLOCKED_PREFIXES, ["0899", "+1900"]),
        "pros": make_list("pros", ListKind.B2B, ["0612000400"]),
    }
    kinds = {n: lst.kind for n, lst in lists.items()}
    return Registries(overridden(lists, overrides), kinds=kinds)


def overridden(lists: dict[str, RegistryList], overrides: dict[str, RegistryList | None]) -> dict[str, RegistryList]:
    """``lists`` with a test's changes: a list replaced, or removed (None); the kinds stay the configured ones."""
    for name, lst in overrides.items():
        if lst is None:
            lists.pop(name, None)
        else:
            lists[name] = lst
    return lists


BASE = Campaign("c", lists=("bloctel", "dnc", "litigators", "premium", "pros"), consent="consent",
                customers="customers", caller_id="0162000000")

# Tuesday 24 Nov 2026, 10:30 Paris: legal, consent regime.
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=PARIS)
# Tuesday 10 Mar 2026, 11:00 Paris: legal, opposition (Bloctel) regime.
BLOCTEL_ERA = datetime(2026, 3, 10, 11, 0, tzinfo=PARIS)


def decide(number: str | Number, *, at: datetime = NOW, history: History = EMPTY_HISTORY,
           regs: Registries | None = None, caller_id: str | None = None, settings: Settings | None = None,
           campaign_name: str | None = None, **campaign: object) -> Decision:
    c = replace(BASE, **campaign)  # type: ignore[arg-type]
    engine = Engine({c.name: c}, home_law("FR"), settings)
    num = number if isinstance(number, Number) else NORM.parse(number)
    return engine.decide(Call(num, campaign_name or c.name, caller_id), regs or registries(), history, at)
