"""The decision engine: runs a jurisdiction's rules in order, first block wins, and explains.

``decide`` is pure: the registry snapshot, the number's history and the clock
are arguments, so every rule is tested with a fixed ``now`` and the same call
always gets the same decision. What depends only on (campaign, snapshot) — which
lists apply, their versions, their freshness on a given day — is compiled once
into a :class:`Plan` and memoised per snapshot, which keeps a decision within a
few microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from gateway.numbers import Kind, Number
from gateway.policy.calendar import Clock, add_months, clock_at, local_times, window_start
from gateway.policy.campaign import AUTO_JURISDICTION, Campaign, Regime, UndatedRelationship, Unsupported
from gateway.policy.consent import UNDATED_ALLOWED
from gateway.policy.consent import basis as consent_basis
from gateway.policy.decision import Basis, Block, Decision, Reason, Verdict
from gateway.policy.jurisdiction import Jurisdiction, LocalRule, PackFor, Rule, law_country
from gateway.registry.model import ListKind, Members, Registries
from gateway.state.model import EMPTY_HISTORY, Cap, History, Retention
from gateway.values.gateway_section import GatewaySection, StaleAction

# What "until withdrawn" keeps a refusal in the state store: a century, longer than any store lives (and still
# an instant every store can compute: ``now - FOREVER`` is after year 1).
FOREVER = timedelta(days=100 * 366)

Named = tuple[str, Members | None]
# Enum members read on every call, as module constants: an attribute of an enum class costs ~50 ns on CPython.
_AUTO, _OPPOSITION, _CONSENT, _NONE = Regime.AUTO, Regime.OPPOSITION, Regime.CONSENT, Regime.NONE
_B2B, _CONTRACT, _CATEGORY = Reason.EXEMPT_B2B, Reason.EXEMPT_CONTRACT, Reason.EXEMPT_CATEGORY
_ALLOW, _BLOCK = Verdict.ALLOW, Verdict.BLOCK
_UNDATED_BLOCK = UndatedRelationship.BLOCK
_GATEWAY_DEFAULTS = GatewaySection()  # a list by name; None when configured but not loaded
# What a rule reduces to for a number with no history (no attempt, refusal or opt-out recorded: most calls): by
# rule name, its history-free part, or None when it cannot fire then. Filled by rules.py, which imports this
# module; a rule not named here runs as it is.
WITHOUT_HISTORY: dict[str, Rule | None] = {}
# For the compiled decisions of a number with no history (Plan.compiled): the rules whose verdict does not depend
# on the number once the plan, the minute's clock, the area and the caller ID are fixed, and, by rule name, the
# (members, block) pairs a rule that only tests the number's membership in lists checks, in order (None: this
# call's rule reads more than that, so no compiled decision). Filled by rules.py.
NUMBER_FREE: set[str] = set()
MEMBERSHIP: dict[str, Callable[[Context], tuple[tuple[Members, Block], ...] | None]] = {}
Check = tuple[Members | None, tuple[object, ...]]  # (members, the Decision's fields but the number); None: always


@dataclass(frozen=True, slots=True)
class Settings:
    """Gateway-wide policy switches, from ``[gateway]`` (whose dataclass holds their defaults)."""

    stale_action: StaleAction  # WARN: a stale list is reported but does not block
    alsace_moselle: bool
    overseas_holidays: bool
    fallback_zone: str  # for numbers whose zone is unknown: the call centre's
    # States whose reported but unverified rules (LocalRule.verified False) apply: every one unless switched off.
    unverified_state_rules: frozenset[str] = frozenset()
    # States whose reported but unverified rules are switched off (``unverified_state_rules_off``).
    unverified_state_rules_off: frozenset[str] = frozenset()
    # How to read a caller ID written in national form: the call centre's plan, whatever the callee's country
    # ("" : the pack's own country).
    home_country: str = ""

    @classmethod
    def of(cls, g: GatewaySection = _GATEWAY_DEFAULTS) -> Settings:
        return cls(g.stale_action, g.alsace_moselle, g.overseas_holidays, g.timezone,
                   frozenset(g.unverified_state_rules), home_country=g.home_country,
                   unverified_state_rules_off=frozenset(g.unverified_state_rules_off))


class Call(NamedTuple):
    """One call to decide (a NamedTuple: built on every call, and cheaper than a frozen dataclass)."""

    number: Number
    campaign_name: str
    caller_id: str | None = None  # None: the campaign's configured caller ID


class Plan:
    """One campaign compiled against one registry snapshot, under one jurisdiction pack, for calls to one country
    (a national list applies only to its country's numbers: ``[lists.X] country``)."""

    __slots__ = (
        "_bases",
        "_caps",
        "_consulted",
        "_stale",
        "b2b_members",
        "by_minute",
        "caller_ids",
        "campaign",
        "capped",
        "compilable",
        "compiled",
        "consent",
        "cooldown_days",
        "country",
        "customer_members",
        "customers",
        "dated",
        "exemption",
        "exemption_fixed",
        "fresh_named",
        "fresh_rules",
        "inquiries",
        "inquiry_members",
        "internal",
        "lists",
        "litigators",
        "max_attempts",
        "opposition",
        "opposition_blocks",
        "pack",
        "prefixes",
        "regs",
        "rules",
        "timed",
        "versions",
        "window_days",
    )

    def __init__(self, campaign: Campaign, regs: Registries, pack: Jurisdiction, country: str | None = None,
                 precompute: bool = True) -> None:
        self.campaign = campaign
        self.regs = regs
        self.pack = pack
        self.country = pack.country if country is None else country
        # The campaign's own cap and cooldown where it sets one, else the law's.
        self.max_attempts, self.window_days, self.cooldown_days = limits(campaign, pack)

        def here(name: str) -> bool:
            """Whether a list applies to this plan's calls: a list of no country, or of the callee's."""
            c = regs.country_of(name)
            return c is None or c == self.country

        def named(name: str) -> Named:
            lst = regs.get(name)
            return (name, lst.members if lst is not None else None)

        self.lists = tuple(n for n in campaign.lists if here(n))

        def of_kind(kind: ListKind) -> tuple[Named, ...]:
            return tuple(named(n) for n in self.lists if regs.kind_of(n) is kind)

        self.opposition = of_kind(ListKind.OPPOSITION)
        # The loaded opposition lists with the block each gives (the same for every number on it).
        self.opposition_blocks = tuple(
            (m, Block(Reason.OPPOSITION_LIST, "opposition_list", f"on the opposition list {n!r}"))
            for n, m in self.opposition if m is not None)
        self.internal = of_kind(ListKind.INTERNAL_DNC)
        self.litigators = of_kind(ListKind.LITIGATORS)
        self.prefixes = of_kind(ListKind.BLOCKED_PREFIXES)
        self.consent = named(campaign.consent) if campaign.consent and here(campaign.consent) else None
        self.customers = named(campaign.customers) if campaign.customers and here(campaign.customers) else None
        self.inquiries = named(campaign.inquiries) if campaign.inquiries and here(campaign.inquiries) else None
        # Loaded members only, for the exemption test every call makes.
        self.b2b_members = tuple(m for _, m in of_kind(ListKind.B2B) if m is not None)
        self.customer_members = self.customers[1] if self.customers is not None else None
        self.inquiry_members = self.inquiries[1] if self.inquiries is not None else None
        self.versions = {n: regs.version(n) for n in (*campaign.lists, campaign.consent, campaign.customers,
                                                      campaign.inquiries) if n}
        self._consulted: dict[tuple[Regime, bool, bool], dict[str, str]] = {}
        self.caller_ids: dict[str, Block | None] = {}  # memo of the caller-ID rule, which depends on the ID alone
        # The rules that can fire for this campaign, in the pack's order (each Block names its rule).
        names = tuple(name for name, _ in pack.rules
                      if (applies := pack.applies.get(name)) is None or applies(self))
        self.rules = tuple(rule for name, rule in pack.rules if name in names)
        # The same chain for a number with no history: each rule's history-free part (none where it has none).
        fresh = ((name, WITHOUT_HISTORY.get(name, rule) if name in WITHOUT_HISTORY else rule)
                 for name, rule in pack.rules if name in names)
        self.fresh_named = tuple((name, rule) for name, rule in fresh if rule is not None)
        self.fresh_rules = tuple(rule for _, rule in self.fresh_named)
        # The exemption where no list is read for it (no b2b list, a campaign that is not b2b, no relationship
        # list that exempts): the same for every call of the plan. exemption_fixed False: it depends on the number.
        self.exemption: Reason | None = None
        self.exemption_fixed = False
        self.dated = (pack.consent_regime_from, pack.opposition_regime_from)  # what an "auto" regime turns on
        if not self.b2b_members and not campaign.b2b and not (pack.contract_exempts and (
                self.customer_members is not None or self.inquiry_members is not None)):
            self.exemption = _CATEGORY if campaign.category in pack.exempt_categories else None
            self.exemption_fixed = True
        self.capped = "frequency_cap" in names  # its allowed calls are counted against a cap
        # Memos of what every call of a day (or of an exemption) shares: a decision stays a few microseconds.
        self._caps: dict[tuple[date, object], Cap] = {}
        self._bases: dict[tuple[Reason | None, Regime], tuple[Basis, str]] = {}
        self._stale: dict[tuple[Regime, bool, bool, date], tuple[str, ...]] = {}
        # The local times of a call from the minute's shared clock (calendar.clock_at), where every hours bound
        # the plan may apply is a whole minute (all of today's packs); precompute False: computed per call, as
        # the reference the memoised path is tested against.
        self.by_minute = precompute and all(b.second == 0 and b.microsecond == 0 for b in _bounds(pack))
        # What the time-only rules (hours, holidays) found for a clock and an area: every call of that minute to
        # that area shares it. Keyed by the clock itself, which the key keeps alive (no id reuse).
        self.timed: dict[tuple[object, Clock, str], Block | Cap | None] = {}
        # Compiled decisions for numbers with no history, by (clock, area, caller ID): where neither the
        # exemption nor consent to this caller depends on the number, what a call's decision holds but the
        # number is fixed by those, and only its lists are left to test (Plan.compile).
        self.compilable = self.by_minute and self.exemption_fixed and not (
            pack.consent_exempts and self.consent is not None) and campaign.regime is not Regime.CONSENT
        self.compiled: dict[tuple[Clock, str, str | None], tuple[Check, ...] | None] = {}

    def cap_on(self, local_now: datetime) -> Cap:
        """The cap of a call made at ``local_now`` (the callee's time): the window ends with that day."""
        key = (local_now.date(), local_now.tzinfo)
        cap = self._caps.get(key)
        if cap is None:
            if len(self._caps) > 1024:
                self._caps.clear()
            assert self.max_attempts is not None and self.window_days is not None  # capped: both are set
            cap = self._caps[key] = Cap(self.max_attempts, window_start(local_now, self.window_days))
        return cap

    def compile(self, ctx: Context) -> tuple[Check, ...] | None:
        """The decision of every call with no history sharing ``ctx``'s clock, area and caller ID, as checks in
        the rules' order: (members, fields): a number in members gets the Decision of those fields (with its
        number), and (None, fields) ends the chain; past the last, the allowed one. None: not compilable here
        (a consent regime, a state's rolling cap, a rule that reads more of the number)."""
        if ctx.clock is None:
            return None
        campaign = self.campaign
        monitor = campaign.monitor
        consulted = self.consulted(ctx.regime, ctx.exemption is not None, ctx.consented)
        cap: Cap | Rolling | None = ctx.cap
        state = ctx.local_rule
        if cap is not None and state is not None and state.max_calls is not None and state.per is not None and (
                self.max_attempts is None or state.max_calls < self.max_attempts):
            # A state's rolling cap binds (Context._binding, no attempt yet): its start is each call's own.
            cap = Rolling(state.max_calls, state.per)
        jurisdiction = self.pack.country or None
        checks: list[Check] = []

        def fields(block: Block) -> tuple[object, ...]:
            return (_ALLOW if monitor else _BLOCK, block.reason, block.rule, True, campaign.name, campaign.mode,
                    ctx.regime, block.detail, consulted, _blocked_warnings(ctx.warnings), monitor,
                    cap if monitor else None, None, jurisdiction)

        for name, rule in self.fresh_named:
            if name in NUMBER_FREE:  # its warnings (a stale list under WARN) are every later outcome's
                block = rule(ctx)
                if block is not None:
                    checks.append((None, fields(block)))
                    return tuple(checks)
            else:
                pairs = MEMBERSHIP[name](ctx) if name in MEMBERSHIP else None
                if pairs is None:
                    return None
                checks += [(members, fields(block)) for members, block in pairs]
        basis, why = ctx.basis()
        checks.append((None, (_ALLOW, ctx.exemption, "allowed", False, campaign.name, campaign.mode, ctx.regime,
                              why, consulted, ctx.warnings, True, cap, basis, jurisdiction)))
        return tuple(checks)

    def cap_at(self, clock: Clock) -> Cap:
        """:meth:`cap_on` for the minute's clock (the same day and zone all the minute long), memoised by it."""
        memo = self.timed
        key = (Plan.cap_at, clock, "")
        cap = memo.get(key)
        if cap is None:
            if len(memo) >= 4096:
                memo.clear()
            cap = memo[key] = self.cap_on(clock.local[0])
        return cap  # type: ignore[return-value]

    def relevant(self, regime: Regime, exempt: bool, consented: bool = False) -> list[str]:
        """Lists a call consults: only those must be fresh (a closed Bloctel never blocks consent calls, a stale
        US list never blocks a call to Toronto: a national list is not this plan's unless of its country)."""
        names = [n for n in self.lists if self.regs.kind_of(n) is not ListKind.OPPOSITION]
        if regime == Regime.OPPOSITION and self.pack.consent_exempts and self.consent is not None and not exempt:
            names.append(self.consent[0])  # consent to this caller exempts from the national list: consulted
        if not exempt and not consented:
            if regime == Regime.OPPOSITION:
                names += [n for n, _ in self.opposition]
            elif regime == Regime.CONSENT and self.consent is not None:
                names.append(self.consent[0])
        if self.customers is not None:
            names.append(self.customers[0])
        if self.inquiries is not None:
            names.append(self.inquiries[0])
        return names

    def consulted(self, regime: Regime, exempt: bool, consented: bool = False) -> dict[str, str]:
        key = (regime, exempt, consented)
        found = self._consulted.get(key)
        if found is None:
            found = self._consulted[key] = {n: self.versions[n] for n in self.relevant(regime, exempt, consented)}
        return found

    def stale(self, regime: Regime, exempt: bool, today: date, consented: bool = False) -> tuple[str, ...]:
        """Why the lists this call needs are not fresh enough today (empty when they are)."""
        key = (regime, exempt, consented, today)
        found = self._stale.get(key)
        if found is None:
            problems = []
            for name in self.relevant(regime, exempt, consented):
                lst = self.regs.get(name)
                if lst is None:
                    problems.append(f"list {name!r} is not loaded")
                    continue
                national = self.regs.country_of(name) if lst.kind is ListKind.OPPOSITION else None
                limit, law = effective_max_age(lst.meta.max_age_days, self.pack, national, self.country)
                if limit is None:
                    continue
                age = lst.meta.age_days(today)
                if age is None:
                    problems.append(f"list {name!r} has no as-of date and must be at most {limit} days old{law}")
                elif age > limit:
                    problems.append(f"list {name!r} is {age} days old (max {limit}{law})")
            found = self._stale[key] = tuple(problems)
        return found


class Rolling(NamedTuple):
    """In a compiled decision, a state's rolling cap (Florida: 3 in 24 hours), which starts ``per`` before each
    call: the call's Decision carries ``Cap(limit, now - per)``."""

    limit: int
    per: timedelta


def _bounds(pack: Jurisdiction) -> list[time]:
    """Every bound of every hours table a pack may apply (its own, its industry code's, its states')."""
    tables = (pack.hours, pack.industry_hours, *(r.hours for r in pack.local_rules.values()))
    return [t for hours in tables if hours is not None for windows in hours.values() for w in windows for t in w]


def effective_max_age(configured: int | None, pack: Jurisdiction, list_country: str | None,
                      callee_country: str) -> tuple[int | None, str]:
    """The age a list may reach and, when the law sets it, the law in words (": 47 CFR ...").

    A national list of the pack's country (``[lists.X] country``) is held to the law's age (US 31 days, GB 28)
    unless its ``max_age_days`` is shorter; a longer one is a config check error, and never lengthens it."""
    legal = pack.list_max_age
    if legal is None or list_country is None or list_country != callee_country:
        return configured, ""
    if configured is not None and configured < legal.days:
        return configured, ""
    return legal.days, f": the law's maximum, {legal.cite.text}"


def limits(campaign: Campaign, pack: Jurisdiction) -> tuple[int | None, int | None, int | None]:
    """(max attempts, window days, cooldown days) for a campaign under a pack: the campaign's where set, else the
    pack's; None where neither has one (no calendar cap, no cooldown). A cap needs both a limit and a window."""
    attempts = pack.max_attempts if campaign.max_attempts is None else campaign.max_attempts
    window = pack.window_days if campaign.window_days is None else campaign.window_days
    if attempts is None or window is None:
        attempts = window = None
    return attempts, window, pack.cooldown_days if campaign.cooldown_days is None else campaign.cooldown_days


def lowest_cap(campaign: Campaign, packs: Mapping[str, Jurisdiction]) -> int:
    """The lowest number of attempts any cap can allow this campaign's calls under these packs (a calendar cap
    or a state's rolling one): a number with fewer attempts in all cannot have reached any cap."""
    found = [n for p in packs.values() for n in (limits(campaign, p)[0],
             *(r.max_calls for r in p.local_rules.values())) if n is not None]
    return min(found, default=1 << 62)


def member(named: Named | None, key: int) -> bool:
    return named is not None and named[1] is not None and key in named[1]


class Context:
    """Everything a rule may read about one call, computed once."""

    __slots__ = (
        "_cap",
        "area",
        "call",
        "caller_id",
        "campaign",
        "clock",
        "consented",
        "consumer",
        "dates",
        "exemption",
        "history",
        "key",
        "local",
        "local_rule",
        "now",
        "pack",
        "plan",
        "regime",
        "regs",
        "settings",
        "today",
        "undated",
        "warnings",
    )

    def __init__(self, call: Call, plan: Plan, history: History, now: datetime, settings: Settings) -> None:
        campaign = plan.campaign
        self.call = call
        self.key = call.number.key
        self.plan = plan
        self.campaign = campaign
        self.caller_id = campaign.caller_id if call.caller_id is None else call.caller_id
        self.regs = plan.regs
        self.history = history
        self.now = now
        pack = self.pack = plan.pack
        self.settings = settings
        number = call.number
        zones_of = pack.zones
        zones = number.zones if zones_of is None else zones_of(number)
        clock = self.clock = clock_at(now, zones, settings.fallback_zone) if plan.by_minute else None
        if clock is None:
            local = self.local = local_times(now, zones, settings.fallback_zone)
            self.dates = (local[0].date(),) if len(local) == 1 else tuple(t.date() for t in local)
            self.today = self.dates[0]  # list freshness is counted in the callee's calendar days, like the rules
        else:  # the minute's local times, shared by every call to these zones in it
            self.local = clock.local
            self.dates = clock.dates
            self.today = clock.today
        self.warnings: tuple[str, ...] = ()
        # The callee's region (France: "FR", "RE", ...) or, where the pack has them, state or province.
        subdivision = pack.subdivision
        if subdivision is None:
            self.area = number.region
            self.local_rule: LocalRule | None = None
        else:
            area = self.area = subdivision(number)
            rule = pack.local_rules.get(area)
            # An unverified rule applies (the stricter reading) unless switched off by name.
            self.local_rule = rule if rule is None or rule.verified or area not in settings.unverified_state_rules_off \
                else None
        if clock is None or campaign.regime is not _AUTO:
            self.regime = self._regime()
        else:  # the regime of the minute's dates under this pack's regime dates, found once a minute
            regime = clock.regimes.get(plan.dated)
            if regime is None:
                regime = clock.regimes[plan.dated] = self._regime()
            self.regime = regime  # type: ignore[assignment]
        self.consumer = True
        self.undated: str | None = None  # the relationship list an undated row exempts on (undated_relationship)
        self.exemption = plan.exemption if plan.exemption_fixed else self._exemption()
        if self.undated is not None and self.exemption is _CONTRACT:
            self.warnings += (f"exempt on an undated row of the {self.undated!r} list (undated_relationship = "
                              "allow): no date, no proof the relationship is recent",)
        # Consent to this caller exempts from the national list (US, Canada, United Kingdom).
        self.consented = (pack.consent_exempts and self.exemption is None and self.regime is _OPPOSITION
                          and member(plan.consent, self.key))
        self._cap: Cap | bool | None = False  # False: not computed yet

    @property
    def cap(self) -> Cap | None:
        """The attempt cap this call is checked and counted against (None: no cap applies to it).

        The window is calendar days in the callee's zone: today and the days before, from midnight.
        """
        cap = self._cap
        if cap is False:
            plan = self.plan
            cap = None
            if plan.capped and self.consumer:
                if plan.max_attempts is not None:
                    clock = self.clock
                    cap = plan.cap_on(self.local[0]) if clock is None else plan.cap_at(clock)
                rule = self.local_rule
                if rule is not None and rule.max_calls is not None and rule.per is not None:
                    rolling = Cap(rule.max_calls, self.now - rule.per)  # a rolling window, not calendar days
                    cap = rolling if cap is None else self._binding(cap, rolling)
            self._cap = cap
        return cap  # type: ignore[return-value]

    def _binding(self, a: Cap, b: Cap) -> Cap:
        """Of two caps, the one with fewer attempts left: the one the count must check (the other is checked by
        the rule too; the store counts against one)."""
        history = self.history
        return a if a.limit - history.attempts_since(a.since) <= b.limit - history.attempts_since(b.since) else b

    def cap_window(self, cap: Cap) -> str:
        """The window of a cap, as people say it."""
        rule = self.local_rule
        if rule is not None and rule.per is not None and cap.since == self.now - rule.per:
            hours = rule.per.total_seconds() / 3600
            return f"{hours:g} hours ({rule.name})"
        return f"{self.plan.window_days} days"

    def _regime(self) -> Regime:
        regime = self.campaign.regime
        if regime is not _AUTO:
            return regime
        pack = self.pack
        start = pack.consent_regime_from
        opp = pack.opposition_regime_from
        dates = self.dates
        if len(dates) == 1:  # the usual case, without generator overhead
            d = dates[0]
            if start is not None and d >= start:
                return _CONSENT
            return _NONE if opp is not None and d < opp else _OPPOSITION
        # The switch happens at midnight in the callee's zone; with several possible zones, the stricter wins.
        if start is not None and any(d >= start for d in dates):
            return _CONSENT
        if opp is not None and all(d < opp for d in dates):
            return _NONE
        return _OPPOSITION

    def _exemption(self) -> Reason | None:
        key = self.key
        plan = self.plan
        pack = self.pack
        b2b = self.campaign.b2b
        if not b2b:
            for members in plan.b2b_members:
                if key in members:
                    b2b = True
                    break
        if b2b:
            self.consumer = False
            if pack.b2b_exempt:
                return _B2B
        if pack.contract_exempts:
            window = pack.relationship
            customers = plan.customer_members
            if customers is not None and key in customers and \
                    self._within(plan.customers, window.purchase_months if window is not None else None):
                return _CONTRACT
            inquiries = plan.inquiry_members
            if inquiries is not None and key in inquiries and \
                    self._within(plan.inquiries, window.inquiry_months if window is not None else None):
                return _CONTRACT
        if self.campaign.category in pack.exempt_categories:
            return _CATEGORY
        return None

    def _within(self, named: Named | None, months: int | None) -> bool:
        """Whether a business relationship still exempts on the call's day: up to its date plus the pack's
        window in calendar months (in every zone the callee may be in: the latest day decides). No window in
        the law: while the number is on the list. No date: the campaign's ``undated_relationship``."""
        if months is None or named is None:
            return True
        since = self.regs.consent_date(named[0], self.key)  # the list's date for the number, when it has one
        if since is None:
            if self.campaign.undated_relationship is _UNDATED_BLOCK:
                self.warnings += (f"the number is on the {named[0]!r} list without a date: no exemption "
                                  "(undated_relationship = block)",)
                return False
            self.undated = named[0]
            return True
        day = since.date() if isinstance(since, datetime) else since
        return max(self.dates) <= add_months(day, months)

    def basis(self) -> tuple[Basis, str]:
        """What an allowed call rests on, and the sentence that says so (only for a call no rule blocked)."""
        plan = self.plan
        if self.exemption is None and self.regime is _CONSENT:
            return consent_basis(self)  # the only basis of its own per number: which consent, given when
        if self.exemption is None and self.consented and plan.consent is not None:
            name = plan.consent[0]  # consent to this caller exempting from the national list (US, CA, GB)
            given = self.regs.consent_date(name, self.key)
            when = f", given on {given.isoformat()}" if given is not None else ", undated"
            return Basis.CONSENT, f"prior consent on the list {name!r}{when}"
        if self.exemption is _CONTRACT and (plan.inquiries is not None or self.pack.relationship is not None):
            return self._shared_basis()  # which list, and its date, depend on the number
        key = (self.exemption, self.regime)
        found = plan._bases.get(key)
        if found is None:
            found = plan._bases[key] = self._shared_basis()
        return found

    def _shared_basis(self) -> tuple[Basis, str]:
        exemption = self.exemption
        plan = self.plan
        if exemption is Reason.EXEMPT_CONTRACT and self.undated is not None:
            return Basis.RELATIONSHIP_UNDATED, (f"a business relationship on the list {self.undated!r}, undated "
                                                "(undated_relationship = allow): no proof it is recent")
        if exemption is Reason.EXEMPT_CONTRACT and plan.customers is not None and member(plan.customers, self.key):
            return Basis.EXEMPT_CONTRACT, f"existing contract: on the customers list {plan.customers[0]!r}" + \
                self._since(plan.customers[0], "purchase_months")
        if exemption is Reason.EXEMPT_CONTRACT and plan.inquiries is not None:
            return Basis.EXEMPT_CONTRACT, f"a recent inquiry: on the inquiries list {plan.inquiries[0]!r}" + \
                self._since(plan.inquiries[0], "inquiry_months")
        if exemption is Reason.EXEMPT_B2B:
            return Basis.EXEMPT_B2B, "a call to a professional: the consumer rules do not apply"
        if exemption is Reason.EXEMPT_CATEGORY:
            return Basis.EXEMPT_CATEGORY, f"{self.campaign.category} calls are exempt from the {self.regime} rule"
        if self.regime == Regime.OPPOSITION:
            names = ", ".join(repr(n) for n, _ in plan.opposition) or "none configured"
            return Basis.NOT_LISTED, f"not on the opposition lists consulted ({names})"
        return Basis.NO_LIST_APPLIES, f"no list regime applies ({self.regime})"

    def _since(self, name: str, which: str) -> str:
        """", dated 2025-08-15, exempt until 2027-02-15 (47 CFR ...)" for a dated relationship under a window."""
        window = self.pack.relationship
        since = self.regs.consent_date(name, self.key)
        if window is None or since is None:
            return ""
        day = since.date() if isinstance(since, datetime) else since
        until = add_months(day, getattr(window, which))
        return f", dated {day.isoformat()}, exempt until {until.isoformat()} ({window.cite.text})"

    def local_date(self, t: datetime) -> date:
        return t.astimezone(self.local[0].tzinfo).date()


_UNSET = object()
# A Decision from its 15 fields in order, without the NamedTuple constructor's Python frame (half its cost).
_new = tuple.__new__
assert len(Decision._fields) == 15, "decide() builds a Decision from all its fields in order"


def _blocked_warnings(warnings: tuple[str, ...]) -> tuple[str, ...]:
    """The warnings of a call a rule blocked: none that says what it would have been allowed on."""
    if not warnings:
        return warnings
    return tuple(w for w in warnings if not w.startswith(UNDATED_ALLOWED))


class Engine:
    """Decides calls. Its only memory is the plan cache, a pure function of its inputs.

    It has no law of its own: ``pack_for`` picks the jurisdiction pack of each call.
    """

    __slots__ = ("_plans", "_plans_for", "campaigns", "pack_for", "precompute", "settings")

    def __init__(self, campaigns: Mapping[str, Campaign], pack_for: PackFor, settings: Settings | None = None, *,
                 precompute: bool = True) -> None:
        self.campaigns = campaigns
        self.pack_for = pack_for
        self.settings = settings or Settings.of()
        # False: every call computes its local times and rules afresh (the reference the tests compare against).
        self.precompute = precompute
        self._plans: dict[tuple[str, str, str], Plan] = {}
        self._plans_for: Registries | None = None

    def plan(self, campaign: Campaign, regs: Registries, pack: Jurisdiction, country: str | None = None) -> Plan:
        """The memoised plan of a campaign under a pack, for calls to ``country`` (default: the pack's)."""
        if regs is not self._plans_for:
            self._plans = {}
            self._plans_for = regs
        country = pack.country if country is None else country
        key = (campaign.name, pack.name, country)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = Plan(campaign, regs, pack, country, self.precompute)
        return plan

    def decide(self, call: Call, regs: Registries, history: History, now: datetime) -> Decision:
        if now.tzinfo is None:
            raise ValueError("decide() needs an aware datetime: pass the clock with its offset")
        number = call.number
        kind = number.kind
        if kind is Kind.EMERGENCY or kind is Kind.SHORT:
            why = "emergency_number" if kind is Kind.EMERGENCY else "short_number"
            return Decision(Verdict.ALLOW, Reason.EMERGENCY, why, False, number.short, call.campaign_name,
                            detail="emergency and short numbers are never blocked", basis=Basis.EMERGENCY)
        if kind is Kind.INVALID:
            return Decision(Verdict.BLOCK, Reason.INVALID_NUMBER, "invalid_number", True, "", call.campaign_name,
                            detail="not a dialable phone number")
        campaign = self.campaigns.get(call.campaign_name)
        if campaign is None:
            return Decision(Verdict.BLOCK, Reason.UNKNOWN_CAMPAIGN, "unknown_campaign", True, number.e164,
                            call.campaign_name, detail=f"no campaign named {call.campaign_name!r}")
        pack = self.pack_for(number, campaign)
        if pack is None:
            return self._no_jurisdiction(number, campaign)
        # The lists of the callee's country apply (and no other country's): the pack's, or with no pack (the
        # list rules alone), the number's.
        country = pack.country or law_country(number)
        plan = self._plans.get((campaign.name, pack.name, country)) if regs is self._plans_for else None
        if plan is None:
            plan = self.plan(campaign, regs, pack, country)
        fresh = history.last_refusal is None and history.opted_out_at is None and not history.stamps
        if fresh and plan.compilable:
            checks = self._compiled(call, plan, now)
            if checks is not None:
                key = number.key
                for members, fields in checks:
                    if members is None or key in members:
                        a, b, c, d, e, f, g, h, i, j, k, m, n, o = fields
                        if m.__class__ is Rolling:
                            m = Cap(m.limit, now - m.per)
                        return _new(Decision, (a, b, c, d, number.e164, e, f, g, h, i, j, k, m, n, o))
        ctx = Context(call, plan, history, now, self.settings)
        consulted = plan.consulted(ctx.regime, ctx.exemption is not None, ctx.consented)
        jurisdiction = pack.country or None
        for rule in plan.fresh_rules if fresh else plan.rules:
            block = rule(ctx)
            if block is not None:
                monitor = campaign.monitor
                return _new(Decision, (
                    _ALLOW if monitor else _BLOCK, block.reason, block.rule, True,
                    number.e164, campaign.name, campaign.mode, ctx.regime, block.detail, consulted,
                    _blocked_warnings(ctx.warnings), monitor, ctx.cap if monitor else None, None, jurisdiction))
        basis, why = ctx.basis()
        return _new(Decision, (_ALLOW, ctx.exemption, "allowed", False, number.e164, campaign.name, campaign.mode,
                               ctx.regime, why, consulted, ctx.warnings, True, ctx.cap, basis, jurisdiction))

    def _compiled(self, call: Call, plan: Plan, now: datetime) -> tuple[Check, ...] | None:
        """The compiled decision of a call with no history (Plan.compile), from the plan's memo."""
        number = call.number
        pack = plan.pack
        settings = self.settings
        zones = number.zones if pack.zones is None else pack.zones(number)
        clock = clock_at(now, zones, settings.fallback_zone)
        if clock is None:
            return None
        key = (clock, number.region if pack.subdivision is None else pack.subdivision(number), call.caller_id)
        memo = plan.compiled
        found = memo.get(key, _UNSET)
        if found is _UNSET:
            if len(memo) >= 4096:  # bounded: a few minutes of areas
                memo.clear()
            found = memo[key] = plan.compile(Context(call, plan, EMPTY_HISTORY, now, settings))
        return found  # type: ignore[return-value]

    @staticmethod
    def _no_jurisdiction(number: Number, campaign: Campaign) -> Decision:
        """No pack judges the call (a country without one, or outside the campaign's forced one): refused, or in
        monitor mode let through and marked (like any block)."""
        country = law_country(number) or "unknown"
        if campaign.jurisdiction != AUTO_JURISDICTION and campaign.jurisdiction != country:
            why = f"a number of {country}, outside the campaign's jurisdiction {campaign.jurisdiction}"
        else:
            why = f"no jurisdiction pack for {country}"
        monitor = campaign.monitor
        return Decision(_ALLOW if monitor else _BLOCK, Reason.NO_JURISDICTION, "no_jurisdiction", True, number.e164,
                        campaign.name, campaign.mode, "", why, counts_attempt=monitor)

    def retention(self, packs: Mapping[str, Jurisdiction]) -> Retention:
        """How long the state stores must keep attempts and refusals for every campaign under every pack it
        can reach (a campaign with a forced jurisdiction reaches that pack only).

        A day more than the longest window: windows are calendar days in the callee's zone, which may start
        up to a day before ``now - window`` in UTC. A refusal that is a do-not-call request is kept as long as
        its pack honours it (US 5 years, Canada 3 years and 14 days, the United Kingdom until withdrawn: for
        as long as the store lives, :data:`FOREVER`).
        """
        def reach(c: Campaign) -> list[Jurisdiction]:
            if c.jurisdiction == AUTO_JURISDICTION or c.unsupported_country is Unsupported.ALLOW:
                return list(packs.values())
            return [p for p in packs.values() if p.country == c.jurisdiction]

        reached = {p.name: p for c in self.campaigns.values() for p in reach(c)} or \
            {p.name: p for p in packs.values()}
        found = [limits(c, p) for c in self.campaigns.values() for p in reach(c)] or \
            [(p.max_attempts, p.window_days, p.cooldown_days) for p in packs.values()]
        windows = [w for _, w, _ in found if w is not None]
        # A state's rolling cap (24 hours) needs its attempts too.
        windows += [math.ceil(r.per / timedelta(days=1)) for p in reached.values() for r in p.local_rules.values()
                    if r.per is not None]
        cooldowns = [timedelta(days=d + 1) for _, _, d in found if d is not None]
        for p in reached.values():
            if p.refusal_dnc is not None:
                longest = p.refusal_dnc.longest()
                cooldowns.append(FOREVER if longest is None else longest + timedelta(days=1))
        return Retention(timedelta(days=max(windows, default=0) + 1), max(cooldowns, default=timedelta(days=1)))
