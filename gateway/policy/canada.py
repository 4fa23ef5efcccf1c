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
from gateway.policy.jurisdiction import (
    CallerIdRules,
    Cite,
    Hours,
    Jurisdiction,
    LegalAge,
    Lifetime,
    Relationship,
    no_holidays,
)

_UTR = "https://crtc.gc.ca/eng/phone/telemarketing/tobligations/rules-regles.htm"
_ACT = "https://laws-lois.justice.gc.ca/eng/acts/T-3.4/page-9.html"

_WEEKDAY = ((time(9, 0), time(21, 30)),)
_WEEKEND = ((time(10, 0), time(18, 0)),)
# UTR Part III s. 32 (Telemarketing Rules): the called consumer's local time.
HOURS: Hours = MappingProxyType({d: _WEEKDAY if d <= 5 else _WEEKEND for d in range(1, 8)})

# Telecommunications Act s. 41.7(1)(e) ("existing business relationship"): 18 months after a purchase, lease or
# written contract; 6 months after an inquiry: calendar months.
RELATIONSHIP = Relationship(18, 6, Cite("Telecommunications Act s. 41.7(1)(e), (2)", _ACT))
# UTR Part II: a do-not-call request to a telemarketer is kept on its internal list 3 years and 14 days.
REFUSAL_DNC = Lifetime(Cite("CRTC Unsolicited Telecommunications Rules, Part II (internal do not call list): "
                            "3 years and 14 days", _UTR), years=3, days=14)
# UTR Part II: a telemarketer uses a copy of the National DNCL at most 31 days old.
LIST_MAX_AGE = LegalAge(31, Cite("CRTC Unsolicited Telecommunications Rules, Part II (National DNCL Rules): a "
                                 "copy at most 31 days old", _UTR))

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
    refusal_dnc=REFUSAL_DNC,
    relationship=RELATIONSHIP,
    list_max_age=LIST_MAX_AGE,
    # Surveys, polls and market research are not telemarketing: neither the hours nor the internal list apply.
    not_telemarketing=frozenset({Category.POLLING}),
    cites=MappingProxyType({
        "hours": Cite("CRTC Unsolicited Telecommunications Rules, Part III (Telemarketing Rules) s. 32", _UTR),
        "national_list": Cite("CRTC Unsolicited Telecommunications Rules, Part II (National DNCL Rules)", _UTR),
        "consent": Cite("Telecommunications Act s. 41.7(1)(f) (express consent)", _ACT),
        "exempt_categories": Cite("Telecommunications Act s. 41.7(1)(a)-(d): registered charities, political "
                                  "parties and candidates, surveys, newspapers of general circulation", _ACT),
        "not_telemarketing": Cite("CRTC: surveys, polls and market research are not telemarketing (neither the "
                                  "Telemarketing Rules' hours nor the internal list apply)", _UTR),
        "own_list": Cite("CRTC Unsolicited Telecommunications Rules, Part II: every exempt telemarketer keeps its "
                         "internal do not call list", _UTR),
        "caller_id": Cite("CRTC Unsolicited Telecommunications Rules, Part III (originating number displayed)", _UTR),
        "holidays": Cite("no day ban: weekend hours instead", _UTR),
    }),
    sources=("https://crtc.gc.ca/eng/trvl2007.htm", _UTR, _ACT),
)
