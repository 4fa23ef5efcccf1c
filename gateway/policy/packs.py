"""The jurisdiction packs that exist, by country, and how a call's pack is picked: the callee's country's law.

``+1`` numbers are split between the United States and Canada by area code (phonenumbers' region); the US
territories with area codes of their own (Puerto Rico, the US Virgin Islands, Guam, American Samoa, the
Northern Mariana Islands) are under US law; France's overseas departments and collectivities that share its
numbering (+262, +590, +594, +596, +508) are France.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from gateway.numbers import Number
from gateway.policy import canada, france, rules, united_kingdom, united_states
from gateway.policy.campaign import AUTO_JURISDICTION, PACK_COUNTRIES, Campaign, Unsupported
from gateway.policy.jurisdiction import (
    LAW_OF_REGION,
    CallerIdRules,
    Hours,
    Jurisdiction,
    LegalAge,
    PackFor,
    law_country,
    no_holidays,
)
from gateway.policy.nanp import area_code
from gateway.registry.model import ListKind

__all__ = ["LAW_OF_REGION", "LISTS_ONLY", "PACKS", "area_code", "callee_law", "for_country", "home_law",
           "hours_tables", "law_country", "list_max_age"]

PACKS: Mapping[str, Jurisdiction] = MappingProxyType({
    "FR": france.PACK, "US": united_states.PACK, "CA": canada.PACK, "GB": united_kingdom.PACK})
assert tuple(PACKS) == PACK_COUNTRIES, "campaign.PACK_COUNTRIES (what the config accepts) must name every pack"

LISTS_ONLY = Jurisdiction(
    name="lists_only",
    country="",  # no pack: check --json says "jurisdiction": null
    rules=rules.chain("registry_stale", "regime_list", "internal_dnc", "litigator", "blocked_prefix"),
    applies=rules.APPLIES,
    opposition_regime_from=None,
    consent_regime_from=None,
    hours=None,
    holidays=no_holidays,
    regions=frozenset(),
    max_attempts=None,
    window_days=None,
    cooldown_days=None,
    caller_id=CallerIdRules(""),
    sector_bans=MappingProxyType({}),
    # The categories every call was exempt from before each pack named its own: France's, kept so that no call's
    # decision changes (a list of no country is often the caller's home list).
    exempt_categories=france.EXEMPT_CATEGORIES,
)
"""What a call to a country without a pack gets under ``unsupported_country = "allow"``: the list rules alone
(the campaign's opposition lists of that country and those of no country, the internal DNC and opt-outs,
litigators, blocked prefixes); no hours, caps or holidays, which only a country's law could give."""


def list_max_age(kind: ListKind, country: str | None, configured: int | None) -> tuple[int | None, LegalAge | None]:
    """The age a list may reach, as the engine applies it (``engine.effective_max_age``), and the law's age when
    it is the one that applies: a national opposition list of a pack's country gets the law's maximum (US 31
    days, GB 28) unless its ``max_age_days`` is shorter. For the page, /healthz, the metrics and config check."""
    pack = PACKS.get(country or "")
    legal = pack.list_max_age if pack is not None and kind is ListKind.OPPOSITION else None
    if legal is None or (configured is not None and configured < legal.days):
        return configured, None
    return legal.days, legal


def for_country(country: str) -> Jurisdiction:
    try:
        return PACKS[country.upper()]
    except KeyError:
        raise LookupError(f"no jurisdiction pack for {country!r} (available: {', '.join(sorted(PACKS))})") from None


def home_law(country: str) -> PackFor:
    """Every call judged by one country's law, whatever the callee's (what the gateway did before issue 12;
    kept for the French suite and benchmarks, which pin it)."""
    pack = for_country(country)

    def pack_for(number: Number, campaign: Campaign) -> Jurisdiction:
        return pack

    return pack_for


def callee_law(packs: Mapping[str, Jurisdiction] = PACKS) -> PackFor:
    """The callee's country picks the pack (``jurisdiction = "auto"``), or the campaign forces one: a number of
    another country, or of a country without a pack, gets none (the engine: ``no_jurisdiction``), or the list
    rules alone (:data:`LISTS_ONLY`) where the campaign says ``unsupported_country = "allow"``."""
    allow = Unsupported.ALLOW
    # The list rules alone, for a number of a pack's country outside the campaign's forced jurisdiction: its
    # national list still has the law's age (US 31 days, GB 28).
    lists_only = {country: replace(LISTS_ONLY, list_max_age=pack.list_max_age) for country, pack in packs.items()}
    # Plain dicts of region -> pack (every call looks one up): faster than the read-only mappings.
    by_region = {region: packs.get(country) for region, country in LAW_OF_REGION.items()}
    by_region.update({country: pack for country, pack in packs.items()})

    def pack_for(number: Number, campaign: Campaign) -> Jurisdiction | None:
        forced = campaign.jurisdiction
        pack = by_region.get(number.region)
        if forced != AUTO_JURISDICTION and (pack is None or pack.country != forced):
            pack = None
        if pack is None and campaign.unsupported_country is allow:
            return lists_only.get(law_country(number), LISTS_ONLY)
        return pack

    return pack_for


def hours_tables(packs: Mapping[str, Jurisdiction] = PACKS) -> tuple[Hours, ...]:
    """Every hours table a call may be judged by: the packs', their states' and provinces', the industry codes'
    (what an offline replay's clock periods must tell apart)."""
    found: list[Hours] = []
    for pack in packs.values():
        for hours in (pack.hours, pack.industry_hours, *(r.hours for r in pack.local_rules.values())):
            if hours is not None and hours not in found:
                found.append(hours)
    return tuple(found)
