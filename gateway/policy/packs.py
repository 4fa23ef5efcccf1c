"""The jurisdiction packs that exist, by country, and how a call's pack is picked."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.numbers import Number
from gateway.policy import france
from gateway.policy.campaign import Campaign
from gateway.policy.jurisdiction import Jurisdiction, PackFor

PACKS: Mapping[str, Jurisdiction] = MappingProxyType({"FR": france.PACK})


def for_country(country: str) -> Jurisdiction:
    try:
        return PACKS[country.upper()]
    except KeyError:
        raise LookupError(f"no jurisdiction pack for {country!r} (available: {', '.join(sorted(PACKS))})") from None


def home_law(country: str) -> PackFor:
    """Every call judged by the home country's law (today's behaviour; the callee's country picks it next)."""
    pack = for_country(country)

    def pack_for(number: Number, campaign: Campaign) -> Jurisdiction:
        return pack

    return pack_for
