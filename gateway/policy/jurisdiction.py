"""Jurisdiction packs: what differs between countries, as data and small functions.

The engine runs a pack's rules in the pack's order; France is the only pack
today, and a US, UK or Canada pack (RULES.md "Other jurisdictions") is a new
module with its own rule list, registered here, with no change to the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.policy.decision import Block
    from gateway.policy.engine import Context, Plan

Rule = Callable[["Context"], "Block | None"]
Applies = Callable[["Plan"], bool]


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    name: str
    home_country: str
    rules: tuple[tuple[str, Rule], ...]  # (name, rule) in precedence order; the first block wins
    consent_regime_from: date | None  # auto regime: opposition list before, prior consent from then on
    opposition_regime_from: date | None
    # Permitted calling windows per ISO weekday (1 = Monday); absent day = no calls.
    hours: dict[int, tuple[tuple[time, time], ...]]
    holidays: Callable[[int, str, bool], frozenset[date]]  # (year, region, alsace_moselle)
    home_regions: frozenset[str]  # regions where holidays are known
    # Rules that cannot fire for a campaign (switched off, no list of that kind) are compiled out of its plan.
    applies: dict[str, Applies]


_PACKS: dict[str, Callable[[], Jurisdiction]] = {}


def register(country: str, factory: Callable[[], Jurisdiction]) -> None:
    _PACKS[country.upper()] = factory


def for_country(country: str) -> Jurisdiction:
    # Import the built-in packs lazily so that they can import the engine's types.
    from gateway.policy import france  # noqa: F401

    try:
        return _PACKS[country.upper()]()
    except KeyError:
        raise LookupError(f"no jurisdiction pack for {country!r} (available: {', '.join(sorted(_PACKS))})") from None
