"""The United Kingdom pack: PECR 2003 regulation 21 (shared RULES.md § United Kingdom), and nothing else.

No live marketing call to a number on the TPS (individuals) or the CTPS (corporate subscribers) unless that
subscriber told this caller it does not object to its calls for the time being (reg. 21(1)(b), (4)): the
campaign's consent list; nor to a subscriber who told this caller not to call (reg. 21(1)(a)): the gateway's
refusals and the company's own list. The caller's number must be presented (reg. 21(2A), as amended 2016). No
statutory calling hours: the industry codes' 8:00-21:00 is a campaign option (``industry_hours``), off by
default. A number counts 28 days after its registration: the TPS/CTPS file's own business.

Charity fundraising and party campaigning are direct marketing under PECR (ICO guidance): not exempt; only
genuine market research (polling) is not marketing at all. The TPS covers individuals' numbers and the CTPS
companies', so a B2B campaign is screened like any other (the company's lists name which lists it consults).
Source: https://ico.org.uk/for-organisations/direct-marketing-and-privacy-and-electronic-communications/
"""

from __future__ import annotations

from datetime import time
from types import MappingProxyType

from gateway.policy import rules
from gateway.policy.campaign import Category
from gateway.policy.jurisdiction import CallerIdRules, Cite, Hours, Jurisdiction, LegalAge, Lifetime, no_holidays

_REG21 = "https://www.legislation.gov.uk/uksi/2003/2426/regulation/21"
_ICO = "https://ico.org.uk/for-organisations/direct-marketing-and-privacy-and-electronic-communications/"

# Industry practice (DMA / Ofcom-cited codes): 8:00-21:00; not law, so a campaign option.
INDUSTRY_HOURS: Hours = MappingProxyType({d: ((time(8, 0), time(21, 0)),) for d in range(1, 8)})

# Reg. 21(1)(a): a subscriber's notice to this caller that such calls should not be made stands until withdrawn.
REFUSAL_DNC = Lifetime(Cite("PECR 2003 reg. 21(1)(a): the objection stands until the subscriber withdraws it (a "
                            "later consent to this caller, reg. 21(4))",
                            _REG21), forever=True)
# A number counts 28 days after its registration (reg. 26): a TPS or CTPS copy at most 28 days old.
LIST_MAX_AGE = LegalAge(28, Cite("PECR 2003 reg. 21(1)(b), (5) and reg. 26: a number counts 28 days after its "
                                 "registration", _ICO))

PACK = Jurisdiction(
    name="united_kingdom",
    country="GB",
    rules=rules.chain("caller_id", "registry_stale", "regime_list", "internal_dnc", "litigator", "blocked_prefix",
                      "frequency_cap", "outside_hours"),
    applies=rules.APPLIES,
    opposition_regime_from=None,  # the TPS since 1999, the CTPS since 2004: opposition lists
    consent_regime_from=None,
    hours=None,  # no statutory calling hours
    holidays=no_holidays,
    regions=frozenset(),
    max_attempts=None,
    window_days=None,
    cooldown_days=None,
    caller_id=CallerIdRules("GB"),
    sector_bans=MappingProxyType({}),
    exempt_categories=frozenset({Category.POLLING}),
    contract_exempts=False,  # no existing-customer exemption for calls (reg. 22's soft opt-in is for e-mail)
    b2b_exempt=False,  # the CTPS protects corporate subscribers
    consent_exempts=True,
    industry_hours=INDUSTRY_HOURS,
    b2b_hours=True,
    refusal_dnc=REFUSAL_DNC,
    list_max_age=LIST_MAX_AGE,
    cites=MappingProxyType({
        "hours": Cite("no statutory calling hours; industry codes 8:00-21:00 (industry_hours, off by default)",
                      _ICO, verified=False),
        "national_list": Cite("PECR 2003 reg. 21(1)(b) (TPS) and 21(3) (CTPS)", _REG21),
        "consent": Cite("PECR 2003 reg. 21(4): the subscriber told this caller it does not object", _REG21),
        "exempt_categories": Cite("ICO guidance: genuine market research is not direct marketing; charities and "
                                  "parties are", _ICO),
        "own_list": Cite("PECR 2003 reg. 21(1)(a)", _REG21),
        "caller_id": Cite("PECR 2003 reg. 21(2A) (as amended 2016)", _REG21),
        "holidays": Cite("no day ban", _ICO),
    }),
    sources=("https://www.legislation.gov.uk/uksi/2003/2426/regulation/21",
             "https://ico.org.uk/for-organisations/direct-marketing-and-privacy-and-electronic-communications/"),
)
