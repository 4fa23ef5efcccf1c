"""The French pack: every datum of French canvassing law (shared RULES.md § France), and nothing else.

Rule order and rules are generic (``rules.py``); what makes them French is here: regime
dates, calling days and hours, public holidays, the attempt cap and refusal cooldown,
caller-ID ranges for automated diallers, and the sector bans.
"""

from __future__ import annotations

from datetime import date, time
from functools import lru_cache
from types import MappingProxyType

import holidays

from gateway.policy import rules
from gateway.policy.campaign import Category, Sector
from gateway.policy.jurisdiction import CallerIdRules, Cite, Jurisdiction

_D223_9 = "https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000046421823"

# Loi 2025-594 art. 13: prior consent from 11 Aug 2026; Bloctel (L223-1) from 1 Jun 2016 until then.
CONSENT_REGIME_FROM = date(2026, 8, 11)
OPPOSITION_REGIME_FROM = date(2016, 6, 1)

# D223-9 (décret 2022-1313): Monday to Friday, 10:00-13:00 and 14:00-20:00 in the callee's zone.
_WEEKDAY_HOURS = ((time(10, 0), time(13, 0)), (time(14, 0), time(20, 0)))
HOURS = MappingProxyType({d: _WEEKDAY_HOURS for d in range(1, 6)})

# D223-9: at most 4 calls or attempts in 30 calendar days; 60 full calendar days after a refusal.
MAX_ATTEMPTS = 4
WINDOW_DAYS = 30
COOLDOWN_DAYS = 60

# ARCEP: numbers automated diallers may present ("numéros polyvalents vérifiés"), overseas 09475-09479.
VERIFIED_CALLER_IDS = tuple("+33" + p for p in (
    "162", "163", "270", "271", "377", "378", "424", "425", "568", "569", "948", "949",
    "9475", "9476", "9477", "9478", "9479"))

# Loi 2020-901: energy renovation, always; loi 2025-594: home adaptation, from 11 Aug 2026.
SECTOR_BANS = MappingProxyType({Sector.ENERGY_RENOVATION: None, Sector.HOME_ADAPTATION: date(2026, 8, 11)})

# Décret 2026-662, art. R223-1, as reported (NOT verified from the Journal officiel): a consent is valid at most
# one year from its collection, with no tacit renewal, and its proof is kept three years after it ends (revoked or
# expired). Settings, these their defaults: campaign consent_max_age_days, [gateway] consent_proof_years. The
# layers below the policy (the campaign value, the [gateway] table, the side store) write the same numbers out;
# tests/policy/test_france.py checks they agree with these.
CONSENT_MAX_AGE_DAYS = 365
CONSENT_PROOF_YEARS = 3

# L223-1, L223-5: categories exempt from the opposition list and the consent requirement (RULES.md "Exemptions").
EXEMPT_CATEGORIES = frozenset({Category.PRESS, Category.POLLING, Category.CHARITY})

# Regions whose holidays are known: mainland and the overseas departments with their own calendar.
REGIONS = frozenset({"FR", "RE", "YT", "GP", "GF", "MQ", "PM"})

# Abolition-of-slavery days of the overseas departments (loi 83-550, décret 83-1003). Taken from here rather
# than from the holidays library's overseas subdivisions, which also add local days (Victor Schœlcher day,
# Good Friday, Mi-Carême) whose standing as canvassing bans RULES.md leaves unverified.
ABOLITION_DAYS = MappingProxyType({"RE": (12, 20), "YT": (4, 27), "GP": (5, 27), "MQ": (5, 22), "GF": (6, 10)})


@lru_cache(maxsize=256)
def public_holidays(year: int, region: str = "FR", alsace_moselle: bool = False,
                    overseas: bool = True) -> frozenset[date]:
    """Code du travail L3133-1 holidays in ``region`` for ``year`` (the holidays library's French calendar),
    with Good Friday and 26 Dec in Alsace-Moselle (subdivision 57) and the overseas abolition day."""
    subdiv = "57" if alsace_moselle and region == "FR" else None
    days = set(holidays.country_holidays("FR", subdiv=subdiv, years=year).keys())
    if overseas and region in ABOLITION_DAYS:
        month, day = ABOLITION_DAYS[region]
        days.add(date(year, month, day))
    return frozenset(days)


PACK = Jurisdiction(
    name="france",
    country="FR",
    rules=rules.chain("sector_ban", "caller_id", "registry_stale", "regime_list", "internal_dnc", "litigator",
                      "blocked_prefix", "refusal_cooldown", "frequency_cap", "public_holiday", "outside_hours"),
    applies=rules.APPLIES,
    opposition_regime_from=OPPOSITION_REGIME_FROM,
    consent_regime_from=CONSENT_REGIME_FROM,
    hours=HOURS,
    holidays=public_holidays,
    regions=REGIONS,
    max_attempts=MAX_ATTEMPTS,
    window_days=WINDOW_DAYS,
    cooldown_days=COOLDOWN_DAYS,
    caller_id=CallerIdRules("FR", VERIFIED_CALLER_IDS, "0162, 0163, 0270, …"),
    sector_bans=SECTOR_BANS,
    exempt_categories=EXEMPT_CATEGORIES,
    consent_max_age_days=CONSENT_MAX_AGE_DAYS,
    consent_proof_years=CONSENT_PROOF_YEARS,
    cites=MappingProxyType({
        "hours": Cite("Code de la consommation D223-9 (décret 2022-1313)", _D223_9),
        "holidays": Cite("D223-9 and Code du travail L3133-1 (Alsace-Moselle and overseas abolition days: "
                         "settings)", _D223_9),
        "frequency_cap": Cite("D223-9: 4 calls or attempts in 30 calendar days", _D223_9),
        "cooldown": Cite("D223-9: 60 full calendar days after a refusal", _D223_9),
        "national_list": Cite("Code de la consommation L223-1 (Bloctel), until 10 Aug 2026",
                              "https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000042148119"),
        "consent": Cite("L223-1 as amended by loi 2025-594 art. 13: prior consent from 11 Aug 2026",
                        "https://legal.tricoteuses.fr/articles/LEGIARTI000051830285"),
        "consent_lifetime": Cite("décret 2026-662, art. R223-1 (reported): at most one year; consent_max_age_days",
                                 "https://legal.tricoteuses.fr/articles/LEGIARTI000051830285", verified=False),
        "consent_proof": Cite("décret 2026-662, art. R223-1 (reported): the proof kept three years after the "
                              "consent ends; consent_proof_years",
                              "https://legal.tricoteuses.fr/articles/LEGIARTI000051830285", verified=False),
        "exempt_categories": Cite("L223-1, L223-5: existing contract, press subscriptions, polling, non-profits",
                                  "https://arcep.fr/demarches-et-services/utilisateurs/demarchage-telephonique-"
                                  "comment-se-premunir-des-sollicitations-commerciales.html"),
        "sector_ban": Cite("loi 2020-901 (energy renovation); loi 2025-594 (home adaptation, from 11 Aug 2026)",
                           "https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000042148119"),
        "caller_id": Cite("L221-17 and ARCEP's numbering plan (verified multi-purpose numbers)",
                          "https://arcep.fr/demarches-et-services/professionnels/plan-numerotation-"
                          "professionnels.html"),
        "own_list": Cite("L223-1: the professional's own opposition list", _D223_9),
    }),
    sources=(_D223_9, "https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000042148119"),
)
