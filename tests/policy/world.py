"""A small world with a national list per country, for the pack tests: lists in memory, the clock passed in.

Every call is judged as the gateway judges it (``callee_law``: the callee's country picks the pack).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.numbers import Normaliser, Number
from gateway.policy.campaign import Campaign
from gateway.policy.decision import Decision
from gateway.policy.engine import Call, Engine, Settings
from gateway.policy.packs import callee_law
from gateway.registry.model import ListKind, Registries, RegistryList
from gateway.state.model import EMPTY_HISTORY, History
from tests.policy import helpers
from tests.policy.helpers import overridden

NORM = Normaliser("FR")
UTC = ZoneInfo("UTC")
AS_OF = date(2026, 7, 10)

NY = "+12125550123"  # New York: Eastern
NY_LISTED = "+12125550100"  # on the US National DNC
FL = "+13055550123"  # Miami: Florida's rules
PANHANDLE = "+18505550123"  # 850: Central and Eastern
PHOENIX = "+16025550123"  # Arizona: standard time all year
NAVAJO = "+19285550123"  # 928: Arizona and the Navajo Nation's daylight time
TORONTO = "+14165550123"
TORONTO_LISTED = "+14165550100"  # on the DNCL
NEWFOUNDLAND = "+17095550123"  # 709: Newfoundland (UTC-3:30) and Labrador (UTC-4)
LONDON = "+442079460123"
LONDON_LISTED = "+442079460100"  # on the TPS
PARIS = "+33612000009"
PARIS_LISTED = "+33612000001"  # on Bloctel
BERLIN = "+4930123456"


def make_list(name: str, kind: ListKind, numbers: list[str], as_of: date | None = AS_OF,
              max_age_days: int | None = None) -> RegistryList:
    """helpers.make_list, with this world's as-of date (its clock is July 2026)."""
    return helpers.make_list(name, kind, numbers, as_of, max_age_days)


def registries(*, dates: dict[str, dict[int, date]] | None = None, **overrides: RegistryList | None) -> Registries:
    lists = {
        "us_dnc": make_list("us_dnc", ListKind.OPPOSITION, [NY_LISTED, FL, "+14165550199"], max_age_days=31),
        "ca_dncl": make_list("ca_dncl", ListKind.OPPOSITION, [TORONTO_LISTED], max_age_days=31),
        "gb_tps": make_list("gb_tps", ListKind.OPPOSITION, [LONDON_LISTED], max_age_days=28),
        "bloctel": make_list("bloctel", ListKind.OPPOSITION, [PARIS_LISTED], max_age_days=30),
        "de_list": make_list("de_list", ListKind.OPPOSITION, ["+4930123400"]),
        "dnc": make_list("dnc", ListKind.INTERNAL_DNC, ["+12125550200", "+14165550200", "+442079460200",
                                                        "+4930123401"]),
        "consent": make_list("consent", ListKind.CONSENT, [NY_LISTED, TORONTO_LISTED, LONDON_LISTED, PARIS]),
        "customers": make_list("customers", ListKind.CUSTOMERS, [NY_LISTED, TORONTO_LISTED, LONDON_LISTED]),
        "inquiries": make_list("inquiries", ListKind.CUSTOMERS, [NY_LISTED, TORONTO_LISTED]),
    }
    countries = {"us_dnc": "US", "ca_dncl": "CA", "gb_tps": "GB", "bloctel": "FR", "de_list": "DE"}
    kinds = {n: lst.kind for n, lst in lists.items()}
    return Registries(overridden(lists, overrides), dates or {}, kinds, countries=countries)


BASE = Campaign("c", lists=("us_dnc", "ca_dncl", "gb_tps", "bloctel", "de_list", "dnc"), caller_id="+33162000000")


def at(local: str, zone: str) -> datetime:
    """A wall-clock time in a zone ("2026-07-14 20:30", "America/New_York")."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))


def attempts(now: datetime, *hours_ago: float) -> History:
    return History(attempts=tuple(sorted(now - timedelta(hours=h) for h in hours_ago)))


def decide(number: str | Number, when: datetime, *, history: History = EMPTY_HISTORY,
           regs: Registries | None = None, caller_id: str | None = None, settings: Settings | None = None,
           **campaign: object) -> Decision:
    c = replace(BASE, **campaign)  # type: ignore[arg-type]
    engine = Engine({c.name: c}, callee_law(), settings)
    num = number if isinstance(number, Number) else NORM.parse(number)
    return engine.decide(Call(num, c.name, caller_id), regs or registries(), history, when)


def outcome(d: Decision) -> tuple[str, str | None]:
    return str(d.verdict), (str(d.reason) if d.reason is not None else None)
