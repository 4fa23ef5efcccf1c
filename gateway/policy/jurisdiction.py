"""A jurisdiction pack: all of one country's law, as data and the order of the generic rules.

The rules (``rules.py``) are generic: each reads what it needs from the pack in the
call's context (hours, regime dates, caps, caller-ID ranges, sector bans, holidays,
exemptions, a state's or province's own rules). A country's pack (``france.py``,
``united_states.py``, ``canada.py``, ``united_kingdom.py``) holds every datum of its law
and nothing else holds any; ``packs.py`` names the packs that exist and picks the callee's.
The engine has no default pack: it is given a :data:`PackFor` that picks the pack per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

from gateway.numbers import Number
from gateway.policy.campaign import Campaign, Category, Sector
from gateway.policy.nanp import US_TERRITORIES

if TYPE_CHECKING:  # the engine's types, for annotations only: the engine imports this module
    from gateway.policy.decision import Block
    from gateway.policy.engine import Context, Plan

# phonenumbers regions whose law is another country's: France's overseas departments and collectivities that
# share its numbering (+262, +590, +594, +596, +508), and the US territories with area codes of their own.
LAW_OF_REGION: Mapping[str, str] = MappingProxyType({
    **dict.fromkeys(("RE", "YT", "GP", "BL", "MF", "GF", "MQ", "PM"), "FR"),
    **dict.fromkeys(US_TERRITORIES, "US"),
})


def law_country(number: Number) -> str:
    """The country whose law protects the callee (and whose national lists apply): the number's region, or the
    country it belongs to; "" when unknown."""
    region = number.region
    return LAW_OF_REGION.get(region, region)


Rule = Callable[["Context"], "Block | None"]
Applies = Callable[["Plan"], bool]
Hours = Mapping[int, tuple[tuple[time, time], ...]]  # ISO weekday (1 = Monday) -> permitted windows
# (year, region, alsace_moselle, overseas) -> public holidays; the region is the number's, or its state or
# province where the pack has subdivisions (the last two arguments are France's settings)
Holidays = Callable[[int, str, bool, bool], frozenset[date]]
ZonesOf = Callable[[Number], tuple[str, ...]]  # every zone a number's callee may be in
SubdivisionOf = Callable[[Number], str]  # a number's state or province ("" when unknown)


def no_holidays(year: int, region: str, alsace_moselle: bool, overseas: bool) -> frozenset[date]:
    """For a pack whose law bans no day."""
    return frozenset()


@dataclass(frozen=True, slots=True)
class Cite:
    """Where a legal value was read: the text as a lawyer cites it, its address, and whether it was read there.

    ``verified`` False: reported by secondary sources but the text itself was not read; the stricter reading is
    applied by default and a setting turns it off (the law command says which)."""

    text: str
    url: str = ""
    verified: bool = True


@dataclass(frozen=True, slots=True)
class LegalAge:
    """The oldest a national list's copy may be when a call is screened against it (US 31 days, GB 28)."""

    days: int
    cite: Cite


@dataclass(frozen=True, slots=True)
class Lifetime:
    """How long a do-not-call request to this caller is honoured: calendar years, months and days after it, or
    until the person withdraws it (``forever``)."""

    cite: Cite
    years: int = 0
    months: int = 0
    days: int = 0
    forever: bool = False

    def __str__(self) -> str:
        if self.forever:
            return "until withdrawn"
        parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in
                 ((self.years, "year"), (self.months, "month"), (self.days, "day")) if n]
        return " and ".join(parts) or "0 days"

    def longest(self) -> timedelta | None:
        """The longest this can last in days (leap days counted): what a store must keep; None: for ever."""
        if self.forever:
            return None
        return timedelta(days=self.years * 366 + self.months * 31 + self.days)


@dataclass(frozen=True, slots=True)
class Relationship:
    """An established business relationship's window, in calendar months in the callee's calendar: after the
    last purchase or transaction (the ``customers`` list's date) and after an inquiry (the ``inquiries``')."""

    purchase_months: int
    inquiry_months: int
    cite: Cite


@dataclass(frozen=True, slots=True)
class LocalRule:
    """A state's or province's own rules, as data, each with its source.

    ``verified`` False: reported (shared RULES.md) but the statute was not read; applied by default (the
    stricter reading) unless the gateway's ``unverified_state_rules_off`` names the state.
    """

    name: str
    source: str
    hours: Hours | None = None  # replaces the pack's hours there (an absent weekday: no calls that day)
    max_calls: int | None = None  # at most this many calls or attempts to a number ...
    per: timedelta | None = None  # ... in any rolling period this long (a rolling window, not calendar days)
    holidays: bool = False  # no calls on the state's public holidays (the holidays library's calendar)
    verified: bool = True
    cite: str = ""  # the section a decision names for the hours and days ("Fla. Stat. 501.616(6)(a)")
    cap_cite: str = ""  # ... and for the cap ("" : the same)
    url: str = ""

    @property
    def short(self) -> str:
        """The citation a BLOCK's detail names."""
        return self.cite or self.source.split(" (")[0].split(":")[0]

    @property
    def cap_short(self) -> str:
        return self.cap_cite or self.short


@dataclass(frozen=True, slots=True)
class CallerIdRules:
    """Which numbers a professional may present (France: L221-17 and ARCEP's numbering plan)."""

    country: str  # how to read a national caller ID when no home country is set (Settings.home_country wins)
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
    hours: Hours | None  # an absent weekday: no calls that day; None: the law sets no hours
    holidays: Holidays
    regions: frozenset[str]  # regions whose holidays ban calls (states: their LocalRule says so)
    max_attempts: int | None  # calls or attempts per number and professional ... (None: no such cap)
    window_days: int | None  # ... in this many calendar days
    cooldown_days: int | None  # full calendar days without a call after a refusal (None: no cooldown)
    caller_id: CallerIdRules
    # Sectors where consumer canvassing is banned, from a date (None: always).
    sector_bans: Mapping[Sector, date | None]
    # Campaign categories exempt from the national list (never from the company's own list).
    exempt_categories: frozenset[Category] = frozenset()
    contract_exempts: bool = True  # the customers list (an existing contract or business relationship) exempts
    b2b_exempt: bool = True  # calls to professionals are exempt from the national list (and the consumer rules)
    # The campaign's consent list exempts a number from the national (opposition) list: consent to this caller.
    consent_exempts: bool = False
    industry_hours: Hours | None = None  # an industry code's hours, for campaigns that opt in (industry_hours)
    b2b_hours: bool = False  # hours apply to calls to professionals too
    zones: ZonesOf | None = None  # None: the number's own zones (phonenumbers')
    subdivision: SubdivisionOf | None = None  # None: no state or province rules
    local_rules: Mapping[str, LocalRule] = field(default_factory=lambda: MappingProxyType({}))  # by subdivision
    # A refusal is a do-not-call request to this caller, honoured this long (None: the cooldown instead).
    refusal_dnc: Lifetime | None = None
    # Established business relationship: the customers and inquiries lists exempt for this many calendar months
    # after the number's date. None: the law sets no window (the list exempts while the number is on it).
    relationship: Relationship | None = None
    # The oldest the national list of this country (``[lists.X] country``) may be: the law's default age.
    list_max_age: LegalAge | None = None
    # Categories exempt from the hours and the caller's own list too: not telemarketing at all (Canada: surveys).
    not_telemarketing: frozenset[Category] = frozenset()
    # A consent's lifetime from its collection, in days (the campaign's consent_max_age_days default), and the
    # years its proof is kept after it ends ([gateway] consent_proof_years): None where the law sets none.
    consent_max_age_days: int | None = None
    consent_proof_years: int | None = None
    # The law's citations of the data above, for people (the law command), by what they cite.
    cites: Mapping[str, Cite] = field(default_factory=lambda: MappingProxyType({}))
    sources: tuple[str, ...] = ()  # where the law was read, for people


PackFor = Callable[[Number, Campaign], "Jurisdiction | None"]
"""Picks the pack that judges a call (the callee's country decides which law applies); None: no pack does."""
