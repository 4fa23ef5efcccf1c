"""What the engine's decision depends on, stated once, for whoever decides once and reuses the answer.

Bulk scrub (:mod:`gateway.scrub.screener`) and the offline replay (:mod:`gateway.replay.offline`) call
:meth:`gateway.policy.engine.Engine.decide` once per *signature* and serve every number of that signature
from the answer. That is exact only while this statement is true: for one campaign, caller ID and instant,
and an empty history, the decision depends on the number only through

- :func:`number_signature`: its kind, region, the time zones its callee may be in, and (+1) its area code
  (the state whose rules apply);
- which of :func:`consulted_lists` hold it, and the date a dated list (consent, customers, inquiries) gives it
  (:func:`list_dates`);

and on its history only through the rules of :data:`HISTORY_RULES` (the attempts only through the frequency
cap, which cannot fire while the number has fewer attempts in all than :func:`~gateway.policy.engine.lowest_cap`).
A rule that reads something else of the number must be stated here, or scrub and replay would silently answer
another number's decision: tests/policy/test_depends.py checks the statement against the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from gateway.numbers import Kind, Number
from gateway.policy.campaign import Campaign
from gateway.policy.engine import lowest_cap
from gateway.policy.nanp import area_code, zones_of
from gateway.registry.model import Registries

__all__ = ["HISTORY_RULES", "NumberSignature", "consulted_lists", "list_dates", "lowest_cap", "number_signature"]

NumberSignature = tuple[Kind, str, tuple[str, ...], str]

# The rules that only a number's history can fire (an empty history never does).
HISTORY_RULES = frozenset({"internal_dnc.optout", "no_consent.withdrawn", "refusal_cooldown", "frequency_cap"})


def number_signature(number: Number) -> NumberSignature:
    """What the decision reads of the number itself, besides the lists that hold it."""
    return number.kind, number.region, zones_of(number), area_code(number)


def consulted_lists(campaign: Campaign) -> tuple[str, ...]:
    """Every list a campaign's decision may read, sorted: its lists, its consent, customers and inquiries lists."""
    return tuple(sorted({*campaign.lists, campaign.consent, campaign.customers, campaign.inquiries} - {""}))


def list_dates(regs: Registries, names: Sequence[str], key: int) -> tuple[date | datetime | None, ...]:
    """The dates the dated lists among ``names`` give the number (None where it has none): what the decision
    reads of a relationship's or a consent's age. Empty when none of the lists is dated."""
    dated = regs.consent_dates
    return tuple(regs.consent_date(n, key) for n in names if n in dated)
