"""The campaign model: what a call centre declares about a campaign, and what follows for the rules.

A leaf module (it imports nothing of the gateway): the config builds campaigns, the policy reads them
(``gateway.policy.campaign`` re-exports it).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar


class Regime(enum.StrEnum):
    AUTO = "auto"  # by the call's date in the callee's calendar (the pack's regime dates)
    OPPOSITION = "opposition"  # call unless the number is on an opposition list
    CONSENT = "consent"  # call only with the callee's prior consent
    NONE = "none"  # no list regime (before the first one, or forced)


class Category(enum.StrEnum):
    PROSPECTING = "prospecting"
    CUSTOMERS = "customers"
    PRESS = "press"
    POLLING = "polling"
    CHARITY = "charity"
    POLITICAL = "political"  # parties and candidates (exempt from the US and Canadian national lists)
    B2B = "b2b"


class Sector(enum.StrEnum):
    NONE = ""
    ENERGY_RENOVATION = "energy_renovation"
    HOME_ADAPTATION = "home_adaptation"


class UndatedConsent(enum.StrEnum):
    """What a consent with no known collection date is worth (``undated_consent``): it is not proof."""

    ALLOW = "allow"  # the call goes through, with a warning, counted (metric, live page): plain lists keep working
    BLOCK = "block"  # no_consent


class UndatedRelationship(enum.StrEnum):
    """What a customers or inquiries row with no date is worth where the law limits the relationship in time
    (``undated_relationship``; US and Canada): no proof that it is recent."""

    ALLOW = "allow"  # the exemption holds, with a warning, counted (metric, live page, the dossier's decisions)
    BLOCK = "block"  # no exemption: the national list and every other rule decide


class Unsupported(enum.StrEnum):
    """What a call gets when no jurisdiction pack judges it (a country without a pack, or outside a forced one)."""

    BLOCK = "block"  # refused: no_jurisdiction
    ALLOW = "allow"  # decided by the list rules alone (internal DNC, litigators, prefixes, that country's lists)


# The campaign's ``jurisdiction``: the callee's country picks the pack, or one pack is forced.
AUTO_JURISDICTION = "auto"
# The countries with a jurisdiction pack (policy/packs.py holds them, and checks this list): what the config
# accepts as a forced ``jurisdiction``, known here because the config reads nothing of the policy but this leaf.
PACK_COUNTRIES = ("FR", "US", "CA", "GB")


class Mode(enum.StrEnum):
    ENFORCE = "enforce"
    MONITOR = "monitor"  # decide and record, but always let the call through (DNC_WOULD_BLOCK says what)



@dataclass(frozen=True, slots=True)
class Campaign:
    """``[campaigns.NAME]``: what a call centre declares about a campaign; the rules follow from it."""

    # One line per key for the configuration reference (gateway/configdoc.py); a key missing here is
    # listed without one.
    KEY_DOCS: ClassVar[Mapping[str, str]] = {
        "regime": "`auto`: the regime of the call's date in the callee's calendar (the pack's dates); or forced.",
        "jurisdiction": ("`auto`: the law of the callee's country; or `FR`, `US`, `CA`, `GB` forced (other countries' "
                         "numbers refused)."),
        "unsupported_country": ("A call to a country with no pack: refused (`no_jurisdiction`), or decided by the "
                                "list rules alone."),
        "industry_hours": "Where the law sets no hours (United Kingdom): apply the industry code's 8:00-21:00.",
        "category": "What the calls are for; some categories are exempt from a country's lists.",
        "sector": ("France: a sector whose canvassing is banned (energy renovation; home adaptation from 11 August "
                   "2026)."),
        "mode": ("`monitor`: decide and record, but let every call through (`DNC_WOULD_BLOCK` says what would have "
                 "been blocked)."),
        "lists": "The opposition, internal_dnc, litigators, b2b and blocked_prefixes lists the campaign consults.",
        "customers": "Name of a customers list: the existing-contract exemption.",
        "inquiries": "Name of a customers-kind list of inquiries (US: 3 months, Canada: 6, when the list is dated).",
        "consent": "Name of the consent list.",
        "caller_id": "The number the trunk presents, checked by the caller ID rule when the dialplan sends none.",
        "automated": "An automated dialler: France's verified caller ID ranges apply.",
        "owned_caller_ids": "If set, the presented number must be one of these.",
        "max_attempts": "Attempts allowed in the window; not set: the law of the call's pack (France: 4).",
        "window_days": "The attempts window, in days; not set: the pack's (France: 30).",
        "cooldown_days": "Days without a call after a refusal; not set: the pack's (France: 60).",
        "check_hours": "Apply the calling hours.",
        "check_holidays": "Apply the public holidays.",
        "check_frequency": "Apply the frequency cap.",
        "check_cooldown": "Apply the cooldown after a refusal.",
        "check_caller_id": "Apply the caller ID rule.",
        "check_staleness": "Block calls that consult a list older than its `max_age_days`.",
        "consent_max_age_days": "A consent's lifetime from collection, in the callee's days; 0: no limit.",
        "undated_consent": ("What a consent with no collection date is worth: let through with a warning, or "
                            "`no_consent`."),
        "undated_relationship": ("What a customers or inquiries row with no date is worth where the law limits the "
                                 "relationship in time (US, Canada): the exemption holds with a warning, or none."),
        "consent_lifts_cooldown": "A consent recorded after a refusal ends the refusal's cooldown.",
    }

    name: str
    regime: Regime = Regime.AUTO
    # "auto": the pack of the callee's country (+1 split between the US and Canada by area code; overseas France
    # is France); or an ISO code ("FR", "US", "CA", "GB") forcing one pack: a number outside it gets no pack.
    jurisdiction: str = AUTO_JURISDICTION
    unsupported_country: Unsupported = Unsupported.BLOCK
    industry_hours: bool = False  # where the law sets no hours (United Kingdom): the industry code's instead
    category: Category = Category.PROSPECTING
    sector: Sector = Sector.NONE
    mode: Mode = Mode.ENFORCE
    lists: tuple[str, ...] = ()
    customers: str = ""
    # A customers-kind list of recent inquiries: an established business relationship shorter than a purchase's
    # where the pack says so (US: 3 months, Canada: 6), when the list carries dates.
    inquiries: str = ""
    consent: str = ""
    caller_id: str = ""
    automated: bool = True
    owned_caller_ids: tuple[str, ...] = ()  # if set, the presented number must be one of these
    # None: the jurisdiction pack's legal value (France: 4 attempts in 30 days, 60 days after a refusal).
    max_attempts: int | None = None
    window_days: int | None = None
    cooldown_days: int | None = None
    # Rule switches, legal default on (RULES.md: "each rule is a campaign-level switch").
    check_hours: bool = True
    check_holidays: bool = True
    check_frequency: bool = True
    check_cooldown: bool = True
    check_caller_id: bool = True
    check_staleness: bool = True
    # Consent lifetime in the callee's calendar days from collection (0: no limit), and what an undated one is worth.
    # France's consent lifetime (policy/france.py CONSENT_MAX_AGE_DAYS, with its source): written out here because
    # the config, below the policy, builds campaigns; tests/policy/test_france.py checks the two agree.
    consent_max_age_days: int = 365
    undated_consent: UndatedConsent = UndatedConsent.ALLOW
    undated_relationship: UndatedRelationship = UndatedRelationship.ALLOW
    # Whether a consent recorded after a refusal (the callee asked to be called back) ends the refusal's cooldown.
    # D223-9 sets the cooldown after a refusal and says nothing of a later consent: off (the cooldown stands) until
    # a lawyer says otherwise.
    consent_lifts_cooldown: bool = False

    def __post_init__(self) -> None:
        # Enum members whatever was passed ("auto" or Regime.AUTO): the engine compares them by identity.
        for name, kind in (("regime", Regime), ("category", Category), ("sector", Sector), ("mode", Mode),
                           ("undated_consent", UndatedConsent), ("unsupported_country", Unsupported),
                           ("undated_relationship", UndatedRelationship)):
            object.__setattr__(self, name, kind(getattr(self, name)))

    @property
    def monitor(self) -> bool:
        return self.mode == Mode.MONITOR

    @property
    def b2b(self) -> bool:
        return self.category == Category.B2B
