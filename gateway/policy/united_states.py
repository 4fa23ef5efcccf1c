"""The United States pack: every datum of US telemarketing law (shared RULES.md § United States), and nothing else.

Federal: the TCPA rules (47 CFR 64.1200) and the FTC's Telemarketing Sales Rule (16 CFR 310). Calls from 8:00 to
21:00 in the called party's local time, any day (64.1200(c)(1), TSR 310.4(c)); no federal day or holiday ban;
the National Do Not Call Registry (64.1200(c)(2), TSR 310.4(b)(1)(iii)(B)) with its exemptions: an established
business relationship (18 months after a purchase or transaction, 3 months after an inquiry, 64.1200(f)(5)),
the person's signed written consent (64.1200(c)(2)(ii)), and calls that are not telephone solicitations
(tax-exempt nonprofits, 64.1200(f)(15)(iii); political calls and surveys, which sell nothing). None of these
exempts from the caller's own do-not-call list: a do-not-call request is honoured for 5 years
(64.1200(d)(3), (d)(6)). Caller ID must be transmitted (64.1601(e), TSR 310.4(a)(8)).

States, as data (:data:`STATE_RULES`): the three whose 2021-2024 statutes end calls at 20:00 and allow at most
3 calls to a number in 24 hours, Washington's 20:00 end, and the day bans (and Louisiana's 20:00 end) that shared
RULES.md reports but nobody here has read in the statute: applied by default, the stricter reading, unless
``[gateway] unverified_state_rules_off`` names the state.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from functools import lru_cache
from types import MappingProxyType

import holidays

from gateway.policy import nanp, rules
from gateway.policy.campaign import Category
from gateway.policy.jurisdiction import (
    CallerIdRules,
    Cite,
    Hours,
    Jurisdiction,
    LegalAge,
    Lifetime,
    LocalRule,
    Relationship,
)

_CFR = "https://www.ecfr.gov/current/title-47/chapter-I/subchapter-B/part-64/subpart-L/section-64.1200"
_TSR = "https://www.ftc.gov/legal-library/browse/rules/telemarketing-sales-rule"

# 47 CFR 64.1200(c)(1), 16 CFR 310.4(c): not before 8:00 nor after 21:00, the called party's time, every day.
HOURS: Hours = MappingProxyType({d: ((time(8, 0), time(21, 0)),) for d in range(1, 8)})
_TO_20: Hours = MappingProxyType({d: ((time(8, 0), time(20, 0)),) for d in range(1, 8)})
_TO_20_NO_SUNDAY: Hours = MappingProxyType({d: ((time(8, 0), time(20, 0)),) for d in range(1, 7)})

# 64.1200(d)(6): a do-not-call request is honoured for 5 years from when it is made.
REFUSAL_DNC = Lifetime(Cite("47 CFR 64.1200(d)(6)", _CFR), years=5)
# 64.1200(f)(5): "within the eighteen (18) months immediately preceding" the call after a purchase or
# transaction, "within the three months immediately preceding" after an inquiry: calendar months.
RELATIONSHIP = Relationship(18, 3, Cite("47 CFR 64.1200(f)(5), 16 CFR 310.2(q)", _CFR))
# 64.1200(c)(2)(i)(D): the registry's copy used is at most 31 days old; TSR 310.4(b)(3)(iv) likewise.
LIST_MAX_AGE = LegalAge(31, Cite("47 CFR 64.1200(c)(2)(i)(D), 16 CFR 310.4(b)(3)(iv)", _CFR))

_DAY = timedelta(hours=24)
_UNREAD = "reported, statute not read (unverified_state_rules_off)"
_REPORTED = "reported by secondary sources, statute not read: on by default; [gateway] unverified_state_rules_off"

STATE_RULES: MappingProxyType[str, LocalRule] = MappingProxyType({
    "FL": LocalRule("Florida", "Fla. Stat. 501.616(6)(a),(b) (Florida Telephone Solicitation Act as amended by "
                    "2021 SB 1120, from 1 Jul 2021): not before 8:00 nor after 20:00, at most 3 calls on the same "
                    "subject in 24 hours", hours=_TO_20, max_calls=3, per=_DAY, cite="Fla. Stat. 501.616(6)(a)",
                    cap_cite="Fla. Stat. 501.616(6)(b)",
                    url="https://www.flsenate.gov/Laws/Statutes/2021/501.616"),
    "OK": LocalRule("Oklahoma", "15 Okla. Stat. 775C.4 (Oklahoma Telephone Solicitation Act of 2022, from 1 Nov "
                    "2022): 8:00-20:00, at most 3 calls on the same subject in 24 hours",
                    hours=_TO_20, max_calls=3, per=_DAY, cite="15 Okla. Stat. 775C.4"),
    "MD": LocalRule("Maryland", "Md. Code, Com. Law 14-4503 (Stop the Spam Calls Act of 2023, from 1 Jan 2024): "
                    "8:00-20:00, at most 3 calls on the same subject in 24 hours",
                    hours=_TO_20, max_calls=3, per=_DAY, cite="Md. Code, Com. Law 14-4503"),
    "WA": LocalRule("Washington", "RCW 19.158.040(2): no telephone solicitation before 8:00 nor after 20:00",
                    hours=_TO_20, cite="RCW 19.158.040(2)",
                    url="https://app.leg.wa.gov/rcw/default.aspx?cite=19.158.040"),
    # Reported (shared RULES.md: "holiday or Sunday bans reported for AL, LA (Sundays too), MS, PA, RI, UT";
    # Louisiana "reported to end at 20:00 (La. R.S. 45:811)"): the statutes not read, the stricter reading.
    "AL": LocalRule("Alabama", f"no calls on state holidays; {_REPORTED}", holidays=True, verified=False,
                    cite=_UNREAD),
    "LA": LocalRule("Louisiana", f"La. R.S. 45:811: 8:00-20:00, no calls on Sundays nor state holidays; "
                    f"{_REPORTED}", hours=_TO_20_NO_SUNDAY, holidays=True, verified=False,
                    cite="La. R.S. 45:811 (reported, not read; unverified_state_rules_off)"),
    "MS": LocalRule("Mississippi", f"no calls on state holidays; {_REPORTED}", holidays=True, verified=False,
                    cite=_UNREAD),
    "PA": LocalRule("Pennsylvania", f"no calls on state holidays; {_REPORTED}", holidays=True, verified=False,
                    cite=_UNREAD),
    "RI": LocalRule("Rhode Island", f"no calls on state holidays; {_REPORTED}", holidays=True, verified=False,
                    cite=_UNREAD),
    "UT": LocalRule("Utah", f"no calls on state holidays; {_REPORTED}", holidays=True, verified=False,
                    cite=_UNREAD),
})


@lru_cache(maxsize=512)
def state_holidays(year: int, state: str, alsace_moselle: bool = False, overseas: bool = True) -> frozenset[date]:
    """A state's public holidays (the holidays library's US calendar for that subdivision)."""
    try:
        return frozenset(holidays.country_holidays("US", subdiv=state, years=year).keys())
    except NotImplementedError:  # a subdivision the library does not know: its federal holidays
        return frozenset(holidays.country_holidays("US", years=year).keys())


PACK = Jurisdiction(
    name="united_states",
    country="US",
    rules=rules.chain("caller_id", "registry_stale", "regime_list", "internal_dnc", "litigator", "blocked_prefix",
                      "frequency_cap", "public_holiday", "outside_hours"),
    applies=rules.APPLIES,
    opposition_regime_from=None,  # the National DNC Registry since 1 Oct 2003: an opposition list, always
    consent_regime_from=None,
    hours=HOURS,
    holidays=state_holidays,
    regions=frozenset(),  # no federal holiday ban; states with one say so in STATE_RULES
    max_attempts=None,  # no federal cap (the states' are in STATE_RULES)
    window_days=None,
    cooldown_days=None,  # a refusal is a do-not-call request instead (REFUSAL_DNC)
    caller_id=CallerIdRules("US"),
    sector_bans=MappingProxyType({}),
    exempt_categories=frozenset({Category.CHARITY, Category.POLITICAL, Category.POLLING}),
    consent_exempts=True,
    zones=nanp.zones_of,
    subdivision=nanp.state_of,
    local_rules=STATE_RULES,
    refusal_dnc=REFUSAL_DNC,
    relationship=RELATIONSHIP,
    list_max_age=LIST_MAX_AGE,
    cites=MappingProxyType({
        "hours": Cite("47 CFR 64.1200(c)(1), 16 CFR 310.4(c)", _CFR),
        "national_list": Cite("47 CFR 64.1200(c)(2), 16 CFR 310.4(b)(1)(iii)(B)", _CFR),
        "consent": Cite("47 CFR 64.1200(c)(2)(ii) (signed written agreement)", _CFR),
        "exempt_categories": Cite("47 CFR 64.1200(f)(15) (tax-exempt nonprofits; political calls and surveys "
                                  "are not telephone solicitations)", _CFR),
        "own_list": Cite("47 CFR 64.1200(d) (no exemption lifts the caller's own list)", _CFR),
        "caller_id": Cite("47 CFR 64.1601(e), 16 CFR 310.4(a)(8)", _CFR),
        "holidays": Cite("no federal day or holiday ban; the states' below", _CFR),
    }),
    sources=(_CFR, _TSR),
)
