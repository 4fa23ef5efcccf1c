"""The French pack: rule order, regime dates, calling hours, holidays (shared RULES.md § France)."""

from __future__ import annotations

from datetime import date, time

from gateway.policy import rules
from gateway.policy.calendar import FR_REGIONS, french_holidays
from gateway.policy.jurisdiction import Jurisdiction, register

_WEEKDAY_HOURS = ((time(10, 0), time(13, 0)), (time(14, 0), time(20, 0)))


def france() -> Jurisdiction:
    return Jurisdiction(
        name="france",
        home_country="FR",
        rules=(
            ("sector_ban", rules.sector_ban),
            ("caller_id", rules.caller_id),
            ("registry_stale", rules.registry_stale),
            ("regime_list", rules.regime_list),
            ("internal_dnc", rules.internal_dnc),
            ("litigator", rules.litigator),
            ("blocked_prefix", rules.blocked_prefix),
            ("refusal_cooldown", rules.refusal_cooldown),
            ("frequency_cap", rules.frequency_cap),
            ("public_holiday", rules.public_holiday),
            ("outside_hours", rules.outside_hours),
        ),
        consent_regime_from=date(2026, 8, 11),
        opposition_regime_from=date(2016, 6, 1),
        hours={d: _WEEKDAY_HOURS for d in range(1, 6)},
        holidays=french_holidays,
        home_regions=FR_REGIONS,
        applies=rules.APPLIES,
    )


register("FR", france)
