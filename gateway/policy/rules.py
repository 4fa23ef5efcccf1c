"""One small pure function per rule: ``rule(ctx) -> Block | None``.

The rules are generic: every legal datum they apply (hours, dates, caps, ranges)
is read from the call's jurisdiction pack (``ctx.pack``; France's in ``france.py``).
Each docstring names the French text it was written for (shared RULES.md). The
order in which they run is the pack's, which is the precedence of DESIGN §7.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache

from gateway.config import StaleAction
from gateway.numbers import Normaliser
from gateway.policy.campaign import Regime
from gateway.policy.consent import consent_rule
from gateway.policy.decision import Block, Reason
from gateway.policy.engine import Context, Plan, member

_OPPOSITION, _CONSENT = Regime.OPPOSITION, Regime.CONSENT  # read on every call: module constants are cheaper
_MASKED = frozenset({"", "anonymous", "unknown", "restricted", "private", "withheld", "unavailable"})
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@lru_cache(maxsize=16)
def _normaliser(country: str) -> Normaliser:
    return Normaliser(country)


@lru_cache(maxsize=1024)
def _caller_key(cid: str, country: str) -> tuple[int, str]:
    num = _normaliser(country).parse(cid)
    return num.key, num.e164


@lru_cache(maxsize=256)
def _owned_keys(ids: tuple[str, ...], country: str) -> frozenset[int]:
    return frozenset(k for k in (_caller_key(i, country)[0] for i in ids) if k)


def sector_ban(ctx: Context) -> Block | None:
    """Loi 2020-901: no consumer canvassing for energy renovation; loi 2025-594: nor home adaptation."""
    sector = ctx.campaign.sector
    if not sector or not ctx.consumer or ctx.exemption is Reason.EXEMPT_CONTRACT:
        return None
    bans = ctx.pack.sector_bans
    if sector not in bans:
        return None
    since = bans[sector]
    if since is not None and all(d < since for d in ctx.dates):
        return None
    return Block(Reason.SECTOR_BAN, "sector_ban", f"consumer canvassing is banned in the {sector} sector")


def caller_id(ctx: Context) -> Block | None:
    """L221-17 (no masked number, the professional's own) and ARCEP's plan for automated diallers."""
    if not ctx.campaign.check_caller_id:
        return None
    memo = ctx.plan.caller_ids
    cid = ctx.caller_id or ""
    if cid in memo:
        return memo[cid]
    result = _caller_id(ctx, cid.strip())
    if len(memo) < 4096:
        memo[cid] = result
    return result


def _caller_id(ctx: Context, cid: str) -> Block | None:
    if cid.lower() in _MASKED:
        return Block(Reason.CALLER_ID, "caller_id.masked", "the presented number is masked or missing")
    rules = ctx.pack.caller_id
    key, e164 = _caller_key(cid, rules.country)
    if not key:
        return Block(Reason.CALLER_ID, "caller_id.invalid", "the presented number is not a valid number")
    owned = ctx.campaign.owned_caller_ids
    if owned and key not in _owned_keys(owned, rules.country):
        return Block(Reason.CALLER_ID, "caller_id.not_owned", "the presented number is not one of the professional's")
    if ctx.campaign.automated and rules.automated_prefixes and not e164.startswith(rules.automated_prefixes):
        return Block(Reason.CALLER_ID, "caller_id.not_verified",
                     f"an automated dialler must present a verified multi-purpose number ({rules.automated_text})")
    return None


def registry_stale(ctx: Context) -> Block | None:
    """RULES.md "Registry freshness": a screening is valid only as long as the list is fresh."""
    if not ctx.campaign.check_staleness:
        return None
    problems = ctx.plan.stale(ctx.regime, ctx.exemption is not None, ctx.today)
    if not problems:
        return None
    if ctx.settings.stale_action == StaleAction.WARN:
        ctx.warnings += problems
        return None
    return Block(Reason.REGISTRY_STALE, "registry_stale", problems[0])


def regime_list(ctx: Context) -> Block | None:
    """L223-1 (opposition list) until 10 Aug 2026; prior consent from 11 Aug 2026 (loi 2025-594, art. 13)."""
    if ctx.exemption is not None:
        return None
    key = ctx.key
    if ctx.regime is _OPPOSITION:
        for named in ctx.plan.opposition:
            if member(named, key):
                return Block(Reason.OPPOSITION_LIST, "opposition_list", f"on the opposition list {named[0]!r}")
    elif ctx.regime is _CONSENT:
        return consent_rule(ctx)  # lifetime, withdrawals, undated consents: policy/consent.py
    return None


def internal_dnc(ctx: Context) -> Block | None:
    """The professional's own do-not-call list, and opt-outs recorded through the gateway."""
    if ctx.history.opted_out_at is not None:
        return Block(Reason.INTERNAL_DNC, "internal_dnc.optout", "the callee opted out")
    for named in ctx.plan.internal:
        if member(named, ctx.key):
            return Block(Reason.INTERNAL_DNC, "internal_dnc", f"on the internal do-not-call list {named[0]!r}")
    return None


def litigator(ctx: Context) -> Block | None:
    for named in ctx.plan.litigators:
        if member(named, ctx.key):
            return Block(Reason.LITIGATOR, "litigator", f"on the litigators list {named[0]!r}")
    return None


def blocked_prefix(ctx: Context) -> Block | None:
    for named in ctx.plan.prefixes:
        if member(named, ctx.key):
            return Block(Reason.BLOCKED_PREFIX, "blocked_prefix", f"in a prefix blocked by {named[0]!r}")
    return None


def refusal_cooldown(ctx: Context) -> Block | None:
    """D223-9: after a refusal, no call or attempt for 60 full calendar days."""
    refused = ctx.history.last_refusal
    if refused is None or not ctx.consumer or not ctx.campaign.check_cooldown:
        return None
    day = ctx.local_date(refused)
    elapsed = (ctx.dates[0] - day).days
    days = ctx.plan.cooldown_days
    if elapsed <= days:
        until = day + timedelta(days=days + 1)
        return Block(Reason.REFUSAL_COOLDOWN, "refusal_cooldown",
                     f"refused on {day.isoformat()}: no call before {until.isoformat()}")
    return None


def frequency_cap(ctx: Context) -> Block | None:
    """D223-9: at most 4 calls or attempts to a consumer per professional in 30 calendar days.

    The cap it checks is the one the decision carries (``ctx.cap``): the service counts exactly that.
    """
    if not ctx.history.attempts:
        return None
    cap = ctx.cap
    if cap is None:
        return None
    n = ctx.history.attempts_since(cap.since)
    if n >= cap.limit:
        return Block(Reason.FREQUENCY_CAP, "frequency_cap",
                     f"{n} calls or attempts in {ctx.plan.window_days} days (max {cap.limit})")
    return None


def public_holiday(ctx: Context) -> Block | None:
    """D223-9 and Code du travail L3133-1: never on a public holiday, in the callee's region."""
    if not ctx.consumer or not ctx.campaign.check_holidays:
        return None
    region = ctx.call.number.region
    if region not in ctx.pack.regions:
        return None
    for d in ctx.dates:
        if d in ctx.pack.holidays(d.year, region, ctx.settings.alsace_moselle, ctx.settings.overseas_holidays):
            return Block(Reason.PUBLIC_HOLIDAY, "public_holiday", f"{d.isoformat()} is a public holiday in {region}")
    return None


def outside_hours(ctx: Context) -> Block | None:
    """D223-9: Monday to Friday, 10:00-13:00 and 14:00-20:00 in the callee's time zone (every possible zone)."""
    if not ctx.consumer or not ctx.campaign.check_hours:
        return None
    for lt in ctx.local:
        windows = ctx.pack.hours.get(lt.isoweekday())
        if not windows:
            return Block(Reason.OUTSIDE_HOURS, "outside_hours.day",
                         f"no calls on {_WEEKDAYS[lt.weekday()]} ({lt.tzinfo})")
        t = lt.time()
        for lo, hi in windows:
            if lo <= t < hi:
                break
        else:
            return Block(Reason.OUTSIDE_HOURS, "outside_hours.time",
                         f"{t.strftime('%H:%M')} in {lt.tzinfo} is outside the permitted hours")
    return None


def _switch(name: str) -> Callable[[Plan], bool]:
    return lambda plan: bool(getattr(plan.campaign, name))


APPLIES: dict[str, Callable[[Plan], bool]] = {
    "sector_ban": lambda plan: bool(plan.campaign.sector),
    "caller_id": _switch("check_caller_id"),
    "registry_stale": _switch("check_staleness"),
    "internal_dnc": lambda plan: True,  # opt-outs recorded through the gateway apply to every campaign
    "litigator": lambda plan: bool(plan.litigators),
    "blocked_prefix": lambda plan: bool(plan.prefixes),
    "refusal_cooldown": _switch("check_cooldown"),
    "frequency_cap": _switch("check_frequency"),
    "public_holiday": _switch("check_holidays"),
    "outside_hours": _switch("check_hours"),
}
