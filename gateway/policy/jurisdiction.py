"""A jurisdiction pack: all of one country's law, as data and the order of the generic rules.

The rules (``rules.py``) are generic: each reads what it needs from the pack in the
call's context (hours, regime dates, caps, caller-ID ranges, sector bans, holidays).
A country's pack (``france.py``) holds every datum of its law and nothing else holds
any; ``packs.py`` names the packs that exist. The engine has no default pack: it is
given a :data:`PackFor` that picks the pack per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import TYPE_CHECKING

from gateway.numbers import Number
from gateway.policy.campaign import Campaign, Sector

if TYPE_CHECKING:  # the engine's types, for annotations only: the engine imports this module
    from gateway.policy.decision import Block
    from gateway.policy.engine import Context, Plan

Rule = Callable[["Context"], "Block | None"]
Applies = Callable[["Plan"], bool]
Hours = Mapping[int, tuple[tuple[time, time], ...]]  # ISO weekday (1 = Monday) -> permitted windows
# (year, region, alsace_moselle, overseas) -> public holidays
Holidays = Callable[[int, str, bool, bool], frozenset[date]]


@dataclass(frozen=True, slots=True)
class CallerIdRules:
    """Which numbers a professional may present (France: L221-17 and ARCEP's numbering plan)."""

    country: str  # how to read a caller ID written in national form
    # E.164 prefixes an automated dialler may present; empty: no such restriction in this jurisdiction.
    automated_prefixes: tuple[str, ...] = ()
    automated_text: str = ""  # the prefixes as people read them, for the decision's detail


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    name: str
    country: str  # ISO 3166 code of the pack
    rules: tuple[tuple[str, Rule], ...]  # (name, rule) in precedence order; the first block wins
    applies: Mapping[str, Applies]  # rules that cannot fire for a campaign are compiled out of its plan
    # Regimes by the callee's date ("auto"): none before the first date, opposition list, then prior consent.
    opposition_regime_from: date | None
    consent_regime_from: date | None
    hours: Hours  # an absent weekday: no calls that day
    holidays: Holidays
    regions: frozenset[str]  # regions whose holidays the pack knows
    max_attempts: int  # calls or attempts per number and professional ...
    window_days: int  # ... in this many calendar days
    cooldown_days: int  # full calendar days without a call after a refusal
    caller_id: CallerIdRules
    # Sectors where consumer canvassing is banned, from a date (None: always).
    sector_bans: Mapping[Sector, date | None]


PackFor = Callable[[Number, Campaign], Jurisdiction]
"""Picks the pack that judges a call (the callee's country decides which law applies)."""
