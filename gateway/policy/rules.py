"""One small pure function per rule: ``rule(ctx) -> Block | None``.

The rules are generic: every legal datum they apply (hours, dates, caps, ranges)
is read from the call's jurisdiction pack (``ctx.pack``; France's in ``france.py``).
Each docstring names the French text it was written for (shared RULES.md). The
order in which they run is the pack's, which is the precedence of DESIGN §7.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise

from gateway.numbers import Normaliser
from gateway.policy.calendar import add_period
from gateway.policy.campaign import Regime
from gateway.policy.consent import consent_rule
from gateway.policy.decision import Block, Reason
from gateway.policy.engine import MEMBERSHIP, NUMBER_FREE, WITHOUT_HISTORY, Context, Named, Plan, member
from gateway.policy.jurisdiction import Rule
from gateway.registry.model import Members
from gateway.values.gateway_section import StaleAction

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
    return Block(Reason.SECTOR_BAN, "sector_ban",
                 f"consumer canvassing is banned in the {sector} sector{_cite(ctx, 'sector_ban')}")


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
    country = ctx.settings.home_country or rules.country  # a national caller ID is the call centre's
    key, e164 = _caller_key(cid, country)
    if not key:
        return Block(Reason.CALLER_ID, "caller_id.invalid", "the presented number is not a valid number")
    owned = ctx.campaign.owned_caller_ids
    if owned and key not in _owned_keys(owned, country):
        return Block(Reason.CALLER_ID, "caller_id.not_owned", "the presented number is not one of the professional's")
    if ctx.campaign.automated and rules.automated_prefixes and not e164.startswith(rules.automated_prefixes):
        return Block(Reason.CALLER_ID, "caller_id.not_verified",
                     f"an automated dialler must present a verified multi-purpose number ({rules.automated_text})"
                     f"{_cite(ctx, 'caller_id')}")
    return None


def registry_stale(ctx: Context) -> Block | None:
    """RULES.md "Registry freshness": a screening is valid only as long as the list is fresh."""
    if not ctx.campaign.check_staleness:
        return None
    problems = ctx.plan.stale(ctx.regime, ctx.exemption is not None, ctx.today, ctx.consented)
    if not problems:
        return None
    if ctx.settings.stale_action == StaleAction.WARN:
        ctx.warnings += problems
        return None
    return Block(Reason.REGISTRY_STALE, "registry_stale", problems[0])


def regime_list(ctx: Context) -> Block | None:
    """L223-1 (opposition list) until 10 Aug 2026; prior consent from 11 Aug 2026 (loi 2025-594, art. 13)."""
    if ctx.exemption is not None or ctx.consented:  # consented: consent to this caller exempts (US, CA, GB)
        return None
    regime = ctx.regime
    if regime is _OPPOSITION:
        key = ctx.key
        for members, block in ctx.plan.opposition_blocks:
            if key in members:
                return block
    elif regime is _CONSENT:
        return consent_rule(ctx)  # lifetime, withdrawals, undated consents: policy/consent.py
    return None


def internal_dnc(ctx: Context) -> Block | None:
    """The professional's own do-not-call list, and opt-outs recorded through the gateway.

    Where a refusal is a do-not-call request to this caller (the pack's ``refusal_dnc``: US 64.1200(d)(6), 5
    years; Canada 3 years and 14 days; the United Kingdom until withdrawn), it blocks like an opt-out for as long
    as the law says it is honoured, counted in calendar years and days of the callee's calendar; no exemption
    lifts it. Calls that are not telemarketing at all (Canada: surveys and polls) are not held to it."""
    if ctx.campaign.category in ctx.pack.not_telemarketing:
        return None
    history = ctx.history
    if history.opted_out_at is not None:
        return Block(Reason.INTERNAL_DNC, "internal_dnc.optout", "the callee opted out")
    lifetime = ctx.pack.refusal_dnc
    refused = history.last_refusal
    if lifetime is not None and refused is not None:
        day = ctx.local_date(refused)
        if lifetime.forever and _withdrawn(ctx, refused):
            return _internal_list(ctx)
        # From the instant of the request, in calendar years, months and days on the callee's clock (the
        # stricter of the callee's zones: the latest end).
        until = None if lifetime.forever else max(
            add_period(refused.astimezone(lt.tzinfo), lifetime.years, lifetime.months, lifetime.days)
            for lt in ctx.local)
        if until is None or ctx.now < until:
            honoured = "until withdrawn" if until is None else \
                f"{lifetime}, until {until.isoformat(timespec='minutes')}"
            return Block(Reason.INTERNAL_DNC, "internal_dnc.refusal",
                         f"asked not to be called on {day.isoformat()} (honoured {honoured}: {lifetime.cite.text})")
    return _internal_list(ctx)


def _internal_list(ctx: Context) -> Block | None:
    for named in ctx.plan.internal:
        if member(named, ctx.key):
            return Block(Reason.INTERNAL_DNC, "internal_dnc", f"on the internal do-not-call list {named[0]!r}")
    return None


def _withdrawn(ctx: Context, refused: datetime) -> bool:
    """An objection that lasts until withdrawn (PECR reg. 21(1)(a)) is withdrawn by the person's later consent to
    this caller's calls (reg. 21(4)): one recorded after it at a call or over the API, or dated after it on the
    campaign's consent list."""
    consented = ctx.history.consent_at
    if consented is not None and consented > refused:
        return True
    named = ctx.plan.consent
    if named is None or not member(named, ctx.key):
        return False
    given = ctx.regs.consent_date(named[0], ctx.key)
    if given is None:
        return False
    if isinstance(given, datetime):
        return given > refused
    return given > ctx.local_date(refused)


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
    days = ctx.plan.cooldown_days
    if days is None:
        return None
    consented = ctx.history.consent_at
    if consented is not None and consented > refused and ctx.campaign.consent_lifts_cooldown:
        return None  # the callee asked to be called back after refusing (a campaign setting: D223-9 is silent)
    day = ctx.local_date(refused)
    elapsed = (ctx.dates[0] - day).days
    if elapsed <= days:
        until = day + timedelta(days=days + 1)
        return Block(Reason.REFUSAL_COOLDOWN, "refusal_cooldown",
                     f"refused on {day.isoformat()}: no call before {until.isoformat()}{_cite(ctx, 'cooldown')}")
    return None


def frequency_cap(ctx: Context) -> Block | None:
    """D223-9: at most 4 calls or attempts to a consumer per professional in 30 calendar days; a state's own
    rolling cap (Florida, Oklahoma, Maryland: 3 in 24 hours) where the callee's area code is in one.

    The cap it checks is the one the decision carries (``ctx.cap``): the service counts exactly that. With two
    caps (a campaign's own and a state's), both are checked and the one with fewer attempts left is carried.
    """
    if not ctx.history.attempt_count:  # no datetime built: the caps count the stamps
        return None
    cap = ctx.cap
    if cap is None:
        return None
    caps = [cap]
    rule = ctx.local_rule
    if ctx.plan.max_attempts is not None and rule is not None and rule.max_calls is not None:
        caps = [ctx.plan.cap_on(ctx.local[0]), *caps]  # the carried one may be the state's: check both
    for c in caps:
        n = ctx.history.attempts_since(c.since)
        if n >= c.limit:
            local = rule is not None and rule.per is not None and c.since == ctx.now - rule.per
            law = f": {rule.name}'s cap, {rule.cap_short}" if local and rule is not None else \
                _cite(ctx, "frequency_cap")
            return Block(Reason.FREQUENCY_CAP, "frequency_cap",
                         f"{n} calls or attempts in {ctx.cap_window(c)} (max {c.limit}){law}")
    return None


def public_holiday(ctx: Context) -> Block | None:
    """D223-9 and Code du travail L3133-1: never on a public holiday, in the callee's region."""
    if not ctx.consumer or not ctx.campaign.check_holidays:
        return None
    return _timed(ctx, _public_holiday)


def _timed(ctx: Context, rule: Rule) -> Block | None:
    """A time-only rule's verdict, memoised per (minute clock, area) in the plan: what it reads past its switches
    is the pack, the campaign, the area (and its state's rule) and the local times, which a clock fixes."""
    clock = ctx.clock
    if clock is None:
        return rule(ctx)
    memo = ctx.plan.timed
    key = (rule, clock, ctx.area)
    found = memo.get(key, _UNSET)
    if found is _UNSET:
        if len(memo) >= 4096:  # bounded: a few minutes of areas
            memo.clear()
        found = memo[key] = rule(ctx)
    return found  # type: ignore[return-value]


_UNSET = object()


def _public_holiday(ctx: Context) -> Block | None:
    region = ctx.area
    if region not in ctx.pack.regions and (ctx.local_rule is None or not ctx.local_rule.holidays):
        return None
    rule = ctx.local_rule
    for d in ctx.dates:
        if d in ctx.pack.holidays(d.year, region, ctx.settings.alsace_moselle, ctx.settings.overseas_holidays):
            law = f": {rule.name}'s ban, {rule.short}" if rule is not None and rule.holidays else \
                _cite(ctx, "holidays")
            return Block(Reason.PUBLIC_HOLIDAY, "public_holiday", f"{d.isoformat()} is a public holiday in {region}"
                                                                  f"{law}")
    return None


def outside_hours(ctx: Context) -> Block | None:
    """D223-9: Monday to Friday, 10:00-13:00 and 14:00-20:00 in the callee's time zone (every possible zone).

    The hours are the pack's (US: 8:00-21:00 every day; Canada: 9:00-21:30 weekdays, 10:00-18:00 weekends), a
    state's own where it has them (Florida: to 20:00), or, where the law sets none (United Kingdom), an industry
    code's for campaigns that opt in (``industry_hours``).
    """
    if not ctx.campaign.check_hours or not (ctx.consumer or ctx.pack.b2b_hours):
        return None
    if ctx.campaign.category in ctx.pack.not_telemarketing:
        return None
    return _timed(ctx, _outside_hours)


def _outside_hours(ctx: Context) -> Block | None:
    rule = ctx.local_rule
    local = rule is not None and rule.hours is not None
    hours = rule.hours if rule is not None and rule.hours is not None else ctx.pack.hours
    industry = False
    if hours is None:
        hours = ctx.pack.industry_hours if ctx.campaign.industry_hours else None
        if hours is None:
            return None
        industry = True
    for lt in ctx.local:
        windows = hours.get(lt.isoweekday())
        if not windows:
            return Block(Reason.OUTSIDE_HOURS, "outside_hours.day",
                         f"no calls on {_WEEKDAYS[lt.weekday()]} ({lt.tzinfo})"
                         f"{_whose(ctx, local, industry, 'days')}")
        t = lt.time()
        for lo, hi in windows:
            if lo <= t < hi:
                break
        else:  # the time written by hand: strftime costs three times as much, on 3 in 10 calls of a mixed load
            return Block(Reason.OUTSIDE_HOURS, "outside_hours.time",
                         f"{t.hour:02d}:{t.minute:02d} in {lt.tzinfo} is outside the permitted hours: "
                         f"{_edge(t, windows)}{_whose(ctx, local, industry, _word(t, windows))}")
    return None


def _edge(t: time, windows: tuple[tuple[time, time], ...]) -> str:
    """Which edge of the day's windows the time is past: "after 20:00", "before 08:00", "between 13:00 and 14:00"."""
    if t < windows[0][0]:
        return f"before {windows[0][0].strftime('%H:%M')}"
    if t >= windows[-1][1]:
        return f"after {windows[-1][1].strftime('%H:%M')}"
    for (_, hi), (lo, _) in pairwise(windows):
        if hi <= t < lo:
            return f"between {hi.strftime('%H:%M')} and {lo.strftime('%H:%M')}"
    return "outside"


def _word(t: time, windows: tuple[tuple[time, time], ...]) -> str:
    return "start" if t < windows[0][0] else "end" if t >= windows[-1][1] else "hours"


def _whose(ctx: Context, local: bool, industry: bool, word: str) -> str:
    """Whose hours those are, as the block names them: ", Florida's end: Fla. Stat. 501.616(6)(a)"."""
    rule = ctx.local_rule
    if local and rule is not None:
        return f", {rule.name}'s {word}: {rule.short}"
    if industry:
        return f", the industry code's {word} (industry_hours)"
    return _cite(ctx, "hours", f", the law's {word}")


def _cite(ctx: Context, what: str, lead: str = "") -> str:
    """": D223-9 ..." for a block the pack's law caused, from the pack's citations ("" when it has none)."""
    cite = ctx.pack.cites.get(what)
    if cite is None:
        return ""
    return f"{lead}: {cite.text}" if lead else f" ({cite.text})"


def _switch(name: str) -> Callable[[Plan], bool]:
    return lambda plan: bool(getattr(plan.campaign, name))


def _has_hours(plan: Plan) -> bool:
    pack = plan.pack
    return (pack.hours is not None or any(r.hours is not None for r in pack.local_rules.values())
            or (plan.campaign.industry_hours and pack.industry_hours is not None))


APPLIES: dict[str, Callable[[Plan], bool]] = {
    "sector_ban": lambda plan: bool(plan.campaign.sector),
    "caller_id": _switch("check_caller_id"),
    "registry_stale": _switch("check_staleness"),
    # opt-outs recorded through the gateway apply to every campaign (but calls that are not telemarketing)
    "internal_dnc": lambda plan: plan.campaign.category not in plan.pack.not_telemarketing,
    "litigator": lambda plan: bool(plan.litigators),
    "blocked_prefix": lambda plan: bool(plan.prefixes),
    "refusal_cooldown": lambda plan: plan.campaign.check_cooldown and plan.cooldown_days is not None,
    "frequency_cap": lambda plan: plan.campaign.check_frequency and (
        plan.max_attempts is not None or any(r.max_calls is not None for r in plan.pack.local_rules.values())),
    "public_holiday": lambda plan: plan.campaign.check_holidays and (
        bool(plan.pack.regions) or any(r.holidays for r in plan.pack.local_rules.values())),
    "outside_hours": lambda plan: plan.campaign.check_hours and _has_hours(plan),
}


_BY_NAME: dict[str, Rule] = {r.__name__: r for r in (
    sector_ban, caller_id, registry_stale, regime_list, internal_dnc, litigator, blocked_prefix, refusal_cooldown,
    frequency_cap, public_holiday, outside_hours)}


def _internal_dnc_list(ctx: Context) -> Block | None:
    """internal_dnc for a number with no opt-out or refusal: the campaign's internal lists alone."""
    if ctx.campaign.category in ctx.pack.not_telemarketing:
        return None
    return _internal_list(ctx)


# For a number with no history: the internal list alone, no cooldown, no cap (each returns None without one).
WITHOUT_HISTORY.update(internal_dnc=_internal_dnc_list, refusal_cooldown=None, frequency_cap=None)


def _blocks(named: tuple[Named, ...], detail: str) -> tuple[tuple[Members, Block], ...]:
    return tuple((m, Block(reason, rule, detail.format(n))) for n, m in named if m is not None
                 for reason, rule in (_MEMBERSHIP_CODES[detail],))


def _regime_list_checks(ctx: Context) -> tuple[tuple[Members, Block], ...] | None:
    """regime_list as list checks: the opposition lists in the opposition regime; nothing for an exempt or
    consented number or without a regime; None in the consent regime (consent_rule reads the number's date)."""
    if ctx.exemption is not None or ctx.consented:
        return ()
    if ctx.regime is _OPPOSITION:
        return ctx.plan.opposition_blocks
    return None if ctx.regime is _CONSENT else ()


_INTERNAL, _LITIGATORS, _PREFIXES = ("on the internal do-not-call list {!r}", "on the litigators list {!r}",
                                     "in a prefix blocked by {!r}")
_MEMBERSHIP_CODES = {_INTERNAL: (Reason.INTERNAL_DNC, "internal_dnc"), _LITIGATORS: (Reason.LITIGATOR, "litigator"),
                     _PREFIXES: (Reason.BLOCKED_PREFIX, "blocked_prefix")}

# What each rule is for a number with no history, once the plan, the minute's clock, the area and the caller ID
# are fixed (engine.Plan.compile): these read nothing of the number ...
NUMBER_FREE.update({"sector_ban", "caller_id", "registry_stale", "public_holiday", "outside_hours"})
# ... and these test its membership in lists, each with the block it gives (the details as the rules word them).
MEMBERSHIP.update(
    regime_list=_regime_list_checks,
    internal_dnc=lambda ctx: () if ctx.campaign.category in ctx.pack.not_telemarketing
    else _blocks(ctx.plan.internal, _INTERNAL),
    litigator=lambda ctx: _blocks(ctx.plan.litigators, _LITIGATORS),
    blocked_prefix=lambda ctx: _blocks(ctx.plan.prefixes, _PREFIXES),
)


def chain(*names: str) -> tuple[tuple[str, Rule], ...]:
    """A pack's rules by name, in its precedence order (DESIGN §7): each pack names the ones its law has."""
    return tuple((name, _BY_NAME[name]) for name in names)
