"""Verdicts, reason codes and the Decision value (DESIGN §7: the codes are a stable contract)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from gateway.policy.campaign import Mode, Regime
from gateway.state.model import Cap

_NO_LISTS: Mapping[str, str] = MappingProxyType({})


class Verdict(enum.StrEnum):
    ALLOW = "ALLOW"
    BLOCK = "BLOCK"


class Reason(enum.StrEnum):
    # allowing reasons
    EMERGENCY = "emergency"
    EXEMPT_CONTRACT = "exempt_contract"
    EXEMPT_CATEGORY = "exempt_category"
    EXEMPT_B2B = "exempt_b2b"
    # blocking reasons, in precedence order
    INVALID_NUMBER = "invalid_number"
    UNKNOWN_CAMPAIGN = "unknown_campaign"
    # no jurisdiction pack judges the call: a country without a pack, or outside the campaign's forced one
    NO_JURISDICTION = "no_jurisdiction"
    SECTOR_BAN = "sector_ban"
    CALLER_ID = "caller_id"
    REGISTRY_STALE = "registry_stale"
    OPPOSITION_LIST = "opposition_list"
    NO_CONSENT = "no_consent"
    INTERNAL_DNC = "internal_dnc"
    LITIGATOR = "litigator"
    BLOCKED_PREFIX = "blocked_prefix"
    REFUSAL_COOLDOWN = "refusal_cooldown"
    FREQUENCY_CAP = "frequency_cap"
    PUBLIC_HOLIDAY = "public_holiday"
    OUTSIDE_HOURS = "outside_hours"
    STATE_UNAVAILABLE = "state_unavailable"  # shared call history unreachable, fail closed
    AUDIT_UNAVAILABLE = "audit_unavailable"  # an ALLOW could not be made durable, fail closed


class Basis(enum.StrEnum):
    """What an ALLOW rests on (``check --json`` "basis"): kept out of the reason so dialplans keep working."""

    EMERGENCY = "emergency"  # emergency and short numbers are never blocked
    CONSENT = "consent"  # a dated prior consent in force (the campaign's consent list, or recorded at a call)
    CONSENT_UNDATED = "consent_undated"  # a consent with no collection date, let through by undated_consent = allow
    EXEMPT_CONTRACT = "exempt_contract"  # an existing contract (customers list)
    # a customers or inquiries row with no date, let through by undated_relationship = allow (US, Canada)
    RELATIONSHIP_UNDATED = "exempt_contract_undated"
    EXEMPT_CATEGORY = "exempt_category"  # press, polling, charity
    EXEMPT_B2B = "exempt_b2b"  # a professional number or a B2B campaign
    NOT_LISTED = "not_listed"  # opposition regime: on none of the opposition lists consulted
    NO_LIST_APPLIES = "no_list_applies"  # no list regime on this date (or the campaign says none)


class Block(NamedTuple):
    """What a rule returns when it blocks: the code, the rule's name, a sentence for people."""

    reason: Reason
    rule: str
    detail: str = ""


class Decision(NamedTuple):
    """The outcome of ``decide``. A NamedTuple (immutable, and built several times faster than a frozen
    dataclass: one is built per call)."""

    verdict: Verdict
    reason: Reason | None
    rule: str
    would_block: bool
    number: str  # E.164, or the short number dialled, or "" when invalid
    campaign: str
    mode: Mode = Mode.ENFORCE
    regime: Regime | str = ""  # "" when no campaign applies
    detail: str = ""
    lists: Mapping[str, str] = _NO_LISTS  # name -> version, lists consulted
    warnings: tuple[str, ...] = ()
    counts_attempt: bool = False  # the call goes through (or would, in monitor mode): count it as an attempt
    cap: Cap | None = None  # the cap the engine checked, which the count must check again atomically
    basis: Basis | None = None  # what an ALLOW rests on; None for a block
    jurisdiction: str | None = None  # the pack's country ("US"); None when no pack judged the call

    @property
    def blocked(self) -> bool:
        return self.verdict is Verdict.BLOCK

    def over_cap(self) -> Decision:
        """This decision once the atomic count found the cap reached: another gateway or call took the last
        attempt between the read of the history and the count. Only a clean ALLOW changes."""
        if self.verdict is not Verdict.ALLOW or self.would_block:
            return self
        limit = self.cap.limit if self.cap is not None else "?"
        return self._replace(verdict=Verdict.ALLOW if self.mode == Mode.MONITOR else Verdict.BLOCK,
                             reason=Reason.FREQUENCY_CAP, rule="frequency_cap", would_block=True,
                             detail=f"attempt cap of {limit} reached")

    def failed_closed(self, reason: Reason, detail: str) -> Decision:
        """This call refused because the gateway cannot do what the law asks of it (count, audit): in
        monitor mode too, since a call that cannot be accounted for must not go out."""
        return self._replace(verdict=Verdict.BLOCK, reason=reason, rule=str(reason), would_block=True,
                             detail=detail)

    @classmethod
    def unavailable(cls, reason: Reason, number: str, campaign: str, detail: str) -> Decision:
        """A call refused before any rule ran (the history it needs cannot be read)."""
        return cls(Verdict.BLOCK, reason, str(reason), True, number, campaign, detail=detail)

    def as_json(self) -> dict[str, Any]:
        """The ``check --json`` object (DESIGN §7), with a few extra keys."""
        return {
            "verdict": str(self.verdict),
            "reason": str(self.reason) if self.reason is not None else None,
            "would_block": self.would_block,
            "number": self.number,
            "rule": self.rule,
            "lists": dict(self.lists),
            "campaign": self.campaign,
            "mode": self.mode,
            "regime": self.regime,
            "detail": self.detail,
            "warnings": list(self.warnings),
            "basis": str(self.basis) if self.basis is not None else None,
            "jurisdiction": self.jurisdiction,
        }
