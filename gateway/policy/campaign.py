"""The campaign model: what a call centre declares about a campaign, and what follows for the rules."""

from __future__ import annotations

from dataclasses import dataclass

REGIMES = ("auto", "opposition", "consent", "none")
CATEGORIES = ("prospecting", "customers", "press", "polling", "charity", "b2b")
SECTORS = ("", "energy_renovation", "home_adaptation")
MODES = ("enforce", "monitor")

# Categories exempt from the opposition list / consent requirement (RULES.md "Exemptions").
EXEMPT_CATEGORIES = frozenset({"press", "polling", "charity"})


@dataclass(frozen=True, slots=True)
class Campaign:
    name: str
    regime: str = "auto"
    category: str = "prospecting"
    sector: str = ""
    mode: str = "enforce"
    lists: tuple[str, ...] = ()
    customers: str = ""
    consent: str = ""
    caller_id: str = ""
    automated: bool = True
    owned_caller_ids: tuple[str, ...] = ()  # if set, the presented number must be one of these
    max_attempts: int = 4
    window_days: int = 30
    cooldown_days: int = 60
    # Rule switches, legal default on (RULES.md: "each rule is a campaign-level switch").
    check_hours: bool = True
    check_holidays: bool = True
    check_frequency: bool = True
    check_cooldown: bool = True
    check_caller_id: bool = True
    check_staleness: bool = True

    @property
    def monitor(self) -> bool:
        return self.mode == "monitor"

    @property
    def b2b(self) -> bool:
        return self.category == "b2b"
