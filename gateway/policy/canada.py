"""The Canadian pack: the CRTC's Unsolicited Telecommunications Rules (shared RULES.md § Canada), and nothing else.

Telemarketing Rules (UTR Part III): calls 9:00-21:30 Monday to Friday and 10:00-18:00 Saturday and Sunday in the
called consumer's time; the originating number must be displayed. National DNCL Rules (UTR Part II): no call
to a number on the National Do Not Call List, except the exemptions of the Telecommunications Act s. 41.7:
registered charities, political parties and candidates, surveys, newspapers of general circulation (their
subscriptions), an existing business relationship (18 months after a purchase or contract, 6 months after an
inquiry), express consent; and calls to businesses (CRTC 2007-48). Every exempt telemarketer still keeps its own
do-not-call list (Part I) and follows the Telemarketing Rules, so the hours apply to calls to businesses too.
Source: https://crtc.gc.ca/eng/trvl2007.htm and https://crtc.gc.ca/eng/phone/telemarketing/
"""

from __future__ import annotations

from datetime import time
from types import MappingProxyType

from gateway.policy import nanp, rules
from gateway.policy.campaign import Category
from gateway.policy.jurisdiction import CallerIdRules, Hours, Jurisdiction, no_holidays

_WEEKDAY = ((time(9, 0), time(21, 30)),)
_WEEKEND = ((time(10, 0), time(18, 0)),)
# UTR Part III s. 32 (Telemarketing Rules): the called consumer's local time.
HOURS: Hours = MappingProxyType({d: _WEEKDAY if d <= 5 else _WEEKEND for d in range(1, 8)})

# Telecommunications Act s. 41.7(1)(e) ("existing business relationship"): 18 months after a purchase, lease or
# written contract; 6 months after an inquiry (as days of 30: the stricter reading).
EBR_PURCHASE_DAYS = 18 * 30
EBR_INQUIRY_DAYS = 6 * 30
# UTR Part II: a do-not-call request to a telemarketer is kept on its own list (the gateway's refusals) for
# three years. *Unverified* from the rules' text here: the figure shared RULES.md does not give; kept as data.
REFUSAL_DNC_DAYS = 3 * 365 + 1

PACK = Jurisdiction(
    name="canada",
    country="CA",
    rules=rules.chain("caller_id", "registry_stale", "regime_list", "internal_dnc", "litigator", "blocked_prefix",
                      "frequency_cap", "outside_hours"),
    applies=rules.APPLIES,
    opposition_regime_from=None,  # the National DNCL since 30 Sep 2008: an opposition list, always
    consent_regime_from=None,
    hours=HOURS,
    holidays=no_holidays,
    regions=frozenset(),
    max_attempts=None,
    window_days=None,
    cooldown_days=None,
    caller_id=CallerIdRules("CA"),
    sector_bans=MappingProxyType({}),
    exempt_categories=frozenset({Category.CHARITY, Category.POLITICAL, Category.POLLING, Category.PRESS}),
    consent_exempts=True,
    b2b_hours=True,
    zones=nanp.zones_of,
    subdivision=nanp.province_of,
    refusal_dnc_days=REFUSAL_DNC_DAYS,
    ebr_purchase_days=EBR_PURCHASE_DAYS,
    ebr_inquiry_days=EBR_INQUIRY_DAYS,
    sources=("https://crtc.gc.ca/eng/trvl2007.htm", "https://laws-lois.justice.gc.ca/eng/acts/T-3.4/page-9.html"),
)
