"""The decision engine: runs a jurisdiction's rules in order, first block wins, and explains.

``decide`` is pure: the registry snapshot, the number's history and the clock
are arguments, so every rule is tested with a fixed ``now`` and the same call
always gets the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from gateway.numbers import Kind, Number
from gateway.policy.calendar import local_times
from gateway.policy.campaign import EXEMPT_CATEGORIES, Campaign
from gateway.policy.decision import Decision, Reason, Verdict
from gateway.policy.jurisdiction import Jurisdiction, for_country
from gateway.registry.model import ListKind, Registries, RegistryList
from gateway.state.model import History


@dataclass(frozen=True, slots=True)
class Settings:
    """Gateway-wide policy switches (from ``[gateway]``)."""

    stale_action: str = "block"  # "warn": a stale list is reported but does not block
    alsace_moselle: bool = False
    fallback_zone: str = "Europe/Paris"  # for numbers whose zone is unknown


@dataclass(frozen=True, slots=True)
class Call:
    number: Number
    campaign_name: str
    caller_id: str | None = None  # None: the campaign's configured caller ID


class Context:
    """Everything a rule may read about one call, computed once."""

    __slots__ = (
        "_lists",
        "call",
        "caller_id",
        "campaign",
        "consulted",
        "consumer",
        "dates",
        "exemption",
        "history",
        "local",
        "now",
        "pack",
        "regime",
        "regs",
        "settings",
        "today",
        "warnings",
    )

    def __init__(self, call: Call, campaign: Campaign, regs: Registries, history: History, now: datetime,
                 pack: Jurisdiction, settings: Settings) -> None:
        self.call = call
        self.campaign = campaign
        self.caller_id = campaign.caller_id if call.caller_id is None else call.caller_id
        self.regs = regs
        self.history = history
        self.now = now
        self.pack = pack
        self.settings = settings
        self.local = local_times(now, call.number.zones, settings.fallback_zone)
        self.dates = tuple(t.date() for t in self.local)
        self.today = now.date()
        self.consulted: dict[str, str] = {}
        self.warnings: list[str] = []
        self._lists: dict[str, RegistryList | None] = {}
        self.regime = self._regime()
        self.exemption = self._exemption()
        self.consumer = self.exemption is not Reason.EXEMPT_B2B

    def lst(self, name: str) -> RegistryList | None:
        """A list by name, recorded as consulted (with its version) for the audit trail."""
        if name in self._lists:
            return self._lists[name]
        found = self.regs.get(name)
        self._lists[name] = found
        self.consulted[name] = found.meta.version if found is not None else "missing"
        return found

    def in_list(self, name: str) -> bool:
        found = self.lst(name)
        return found is not None and self.call.number.key in found

    def campaign_lists(self, kind: ListKind) -> list[str]:
        return [name for name in self.campaign.lists if self.regs.kind_of(name) is kind]

    def _regime(self) -> str:
        regime = self.campaign.regime
        if regime != "auto":
            return regime
        start = self.pack.consent_regime_from
        # The switch happens at midnight in the callee's zone; with several possible zones, the stricter wins.
        if start is not None and any(d >= start for d in self.dates):
            return "consent"
        opp = self.pack.opposition_regime_from
        if opp is not None and all(d < opp for d in self.dates):
            return "none"
        return "opposition"

    def _exemption(self) -> Reason | None:
        c = self.campaign
        if c.b2b or any(self.in_list(n) for n in self.campaign_lists(ListKind.B2B)):
            return Reason.EXEMPT_B2B
        if c.customers and self.in_list(c.customers):
            return Reason.EXEMPT_CONTRACT
        if c.category in EXEMPT_CATEGORIES:
            return Reason.EXEMPT_CATEGORY
        return None

    def local_date(self, t: datetime) -> date:
        return t.astimezone(self.local[0].tzinfo).date()


class Engine:
    """Decides calls for one jurisdiction; holds no mutable state."""

    __slots__ = ("campaigns", "pack", "settings")

    def __init__(self, campaigns: dict[str, Campaign], pack: Jurisdiction | None = None,
                 settings: Settings | None = None) -> None:
        self.campaigns = campaigns
        self.pack = pack or for_country("FR")
        self.settings = settings or Settings()

    def decide(self, call: Call, regs: Registries, history: History, now: datetime) -> Decision:
        if now.tzinfo is None:
            raise ValueError("decide() needs an aware datetime: pass the clock with its offset")
        number = call.number
        kind = number.kind
        if kind is Kind.EMERGENCY or kind is Kind.SHORT:
            why = "emergency_number" if kind is Kind.EMERGENCY else "short_number"
            return Decision(Verdict.ALLOW, Reason.EMERGENCY, why, False, number.short, call.campaign_name,
                            detail="emergency and short numbers are never blocked")
        if kind is Kind.INVALID:
            return Decision(Verdict.BLOCK, Reason.INVALID_NUMBER, "invalid_number", True, "", call.campaign_name,
                            detail="not a dialable phone number")
        campaign = self.campaigns.get(call.campaign_name)
        if campaign is None:
            return Decision(Verdict.BLOCK, Reason.UNKNOWN_CAMPAIGN, "unknown_campaign", True, number.e164,
                            call.campaign_name, detail=f"no campaign named {call.campaign_name!r}")
        ctx = Context(call, campaign, regs, history, now, self.pack, self.settings)
        for name, rule in self.pack.rules:
            block = rule(ctx)
            if block is not None:
                monitor = campaign.monitor
                return Decision(
                    Verdict.ALLOW if monitor else Verdict.BLOCK, block.reason, block.rule or name, True,
                    number.e164, campaign.name, campaign.mode, ctx.regime, block.detail, ctx.consulted,
                    tuple(ctx.warnings), counts_attempt=monitor)
        return Decision(Verdict.ALLOW, ctx.exemption, "allowed", False, number.e164, campaign.name, campaign.mode,
                        ctx.regime, "no rule blocks this call", ctx.consulted, tuple(ctx.warnings),
                        counts_attempt=True)
