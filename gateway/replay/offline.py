"""Offline replay: every call of a trace decided in-process at the time the trace recorded for it.

The same engine as ``serve`` (``service.engine_for``: the config's campaigns under the home country's law)
decides each call against the config's lists, with a history of its own: a fresh in-memory state store
(``EmbeddedState(None)``, the retention the engine derives from the campaigns, as the gateway's) that the
replay fills as the gateway would have — each allowed call counted as an attempt against the cap its decision
carries, each ``refusal``/``optout`` line of the trace recorded at its time. So caps, cooldowns and consent
withdrawals build up over the trace as they would have; no gateway is asked, no audit record written, no
shared state read or touched.

Calls are decided in time order (a merged capture may be out of order: a cap counts what came before in
time, not in the file), and reported in the trace's order.

:func:`shift_weeks` moves a whole trace to another date by whole weeks in the call centre's wall-clock time:
every call keeps its weekday and its local time, so the hours rules see the same calls and only the calendar
(public holidays, the regime's switch date, list freshness) differs.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import cast

from gateway.numbers import Normaliser, Number
from gateway.policy.calendar import local_times
from gateway.policy.decision import Decision
from gateway.policy.depends import consulted_lists, lowest_cap, number_signature
from gateway.policy.engine import Call as EngineCall
from gateway.policy.engine import Engine
from gateway.policy.packs import PACKS, hours_tables
from gateway.registry.model import Members, Registries
from gateway.replay.runner import Result
from gateway.replay.trace import Call, Event
from gateway.state.model import EMPTY_HISTORY
from gateway.state.store import EmbeddedState

__all__ = [
    "ALLOWED",
    "Difference",
    "OfflineDecider",
    "Shift",
    "differences",
    "group_differences",
    "label",
    "replay_offline",
    "shift_weeks",
    "untimed",
]

_CALL, _REFUSAL, _OPTOUT = Event.CALL, Event.REFUSAL, Event.OPTOUT  # read per line: module constants
_NUMBER_MEMO = 1 << 20  # distinct dialled strings kept parsed; a trace calls the same numbers again and again
_DECISION_MEMO = 1 << 16  # decisions kept by signature and period (a few per campaign and hour of a day)
Period = tuple[tuple[date, tuple[int, ...]], ...]  # see OfflineDecider._period
_Entry = tuple[int, list[float], int, tuple[str, ...], int]  # see OfflineDecider._entry


class OfflineDecider:
    """One configuration's decisions over one trace, with the trace's own call history.

    Build one per replay (and one per configuration when comparing): its state starts empty. Calls must come in
    time order (:func:`replay_offline` sorts them).

    The engine is asked once per *signature* rather than once per call: what the gateway's ``check`` answers for
    a number with no refusal and no opt-out depends on the number only through what the engine states
    (:mod:`gateway.policy.depends`: its signature and which of the campaign's lists hold it), on the clock only
    through the callee's local dates and where its local times fall among the packs' hours windows (the
    *period*: a few a day), and on its attempts only through the frequency cap, which cannot fire while the
    number has fewer attempts in all than any cap the campaign can have. So the decision for an empty history
    is kept per (campaign, caller ID, signature, period) and serves every such call. The others — a refusal or
    an opt-out in the history, as many attempts as the lowest cap, a member of a dated list (its date is its
    own) — are decided by the engine with their whole history.
    tests/replay/test_offline.py checks the verdicts, reasons and rules against the engine alone, call by call.
    A cached Decision's ``number``, ``detail`` and ``lists`` may be those of another number and minute of its
    signature and period: a replay reports verdicts and reasons only.
    """

    def __init__(self, engine: Engine, registries: Registries, normaliser: Normaliser, professional: str, *,
                 ignore_caller_id: bool = False, shortcuts: bool = True) -> None:
        self.engine = engine
        self.registries = registries
        self.normaliser = normaliser
        self.professional = professional
        self.ignore_caller_id = ignore_caller_id
        self.shortcuts = shortcuts  # False: the engine for every call (what the shortcuts are tested against)
        self.state = EmbeddedState(None, retention=engine.retention(PACKS))  # memory only: nothing shared
        self.engine_calls = 0
        self._numbers: dict[str, Number] = {}
        self._campaigns: dict[str, tuple[tuple[Members, ...], int, int]] = {}
        self._cache: dict[tuple[object, ...], Decision] = {}
        self._hours = hours_tables(PACKS)
        self._bucket = -1  # the minute of the last call, and the periods of its callees' zones
        self._minute: dict[tuple[str, ...], int] = {}
        self._periods: dict[Period, int] = {}  # each period seen, as a small int: a signature hashes it per call
        self._kinds: dict[tuple[object, ...], int] = {}  # (kind, region, zones) seen, as a small int: likewise
        # dialled -> (its Number, its (kind, region, zones, area code) id, every zone its callee may be in)
        self._idents: dict[str, tuple[Number, int, tuple[str, ...]]] = {}
        self._step = 60 if _whole_minutes() else 1
        # The attempts of the numbers the shortcuts alone have seen, as UNIX times, oldest first: what the store
        # would hold for them (pruned alike), without a datetime and two store calls per allowed call. A number
        # moves into the store (:meth:`_keep`, its attempts replayed there in order: the same list) before
        # anything reads its history there: the engine with its history, a refusal or an opt-out.
        self._times: dict[int, list[float]] = {}
        self._kept: set[int] = set()  # the numbers whose history is in the store
        # run(): per campaign, per dialled string, what its calls need (see _entry); and the rows per signature.
        self._entries: dict[str, dict[str, _Entry]] = {}
        self._bases: dict[tuple[object, ...], int] = {}
        self._rows: dict[tuple[object, ...], tuple[Decision, bool, str, str, bool]] = {}
        self._horizon = self.state.retention.attempts.total_seconds()

    def number(self, dialled: str) -> Number:
        numbers = self._numbers
        found = numbers.get(dialled)
        if found is None:
            if len(numbers) >= _NUMBER_MEMO:
                numbers.clear()
            found = numbers[dialled] = self.normaliser.parse(dialled)
        return found

    def _campaign(self, campaign: str) -> tuple[tuple[Members, ...], int, int]:
        """The loaded lists a campaign's calls may consult (:func:`~gateway.policy.depends.consulted_lists`), the
        lowest attempt cap any pack gives it: a number with fewer attempts than that in its whole history cannot
        have reached its cap (an unknown campaign: no list, no cap), and the mask of the lists whose members carry
        a date the engine reads."""
        found = self._campaigns.get(campaign)
        if found is None:
            c = self.engine.campaigns.get(campaign)
            regs = self.registries
            names = [n for n in consulted_lists(c) if regs.get(n) is not None] if c is not None else []
            members = tuple(regs.lists[n].members for n in names)
            dated = sum(1 << i for i, n in enumerate(names) if n in regs.consent_dates)
            lowest = lowest_cap(c, PACKS) if c is not None else 0
            found = self._campaigns[campaign] = (members, lowest, dated)
        return found

    def decide(self, call: Call, at: float) -> Decision:
        """The decision the gateway's ``check`` route would have made at ``at`` (UNIX time), counting the attempt."""
        # The hot loop of an offline replay: look-ups inlined rather than helper calls (each costs ~0.1 µs).
        found_number = self._idents.get(call.number) or self._ident(call.number)
        number, ident, zones = found_number
        key = number.key
        campaign = call.campaign
        # "" is what the trace has when the caller ID was anonymous or absent: as online, where no caller ID is
        # passed, the campaign's configured one applies (None).
        caller = None if self.ignore_caller_id or not call.caller_id else call.caller_id
        if not self.shortcuts:
            return self._exact(number, campaign, caller, _utc(at))
        lists, lowest_cap, dated = self._campaigns.get(campaign) or self._campaign(campaign)
        times = None
        kept = False
        if key:
            if key in self._kept:  # its history is in the store: counted there, as the gateway does
                kept = True
                attempts = self.state.attempt_count_now(self.professional, key)
                if attempts is None or (attempts and attempts >= lowest_cap):  # a refusal, an opt-out, or the
                    return self._exact(number, campaign, caller, _utc(at))  # cap may be reached: dates matter
            else:
                times = self._times.get(key)
                if times:
                    if times[0] < at - self._horizon:  # as the store prunes before it counts
                        horizon = at - self._horizon
                        while times and times[0] < horizon:
                            del times[0]
                    if len(times) >= lowest_cap:  # the cap may be reached: the rules count the attempts' dates
                        return self._exact(number, campaign, caller, _utc(at))
        mask = 0
        bit = 1
        for members in lists:
            if key in members:
                mask |= bit
            bit <<= 1
        if mask & dated:  # its date is its own: no signature serves it
            return self._exact(number, campaign, caller, _utc(at))
        bucket = int(at // self._step)
        if bucket != self._bucket:
            self._bucket = bucket
            self._minute = {}
        period = self._minute.get(zones)
        if period is None:
            period = self._period(bucket, zones)
        sig = (campaign, caller, ident, mask, period)
        cache = self._cache
        found = cache.get(sig)
        if found is None:
            if len(cache) >= _DECISION_MEMO:
                cache.clear()
            found = cache[sig] = self.engine.decide(EngineCall(number, campaign, caller), self.registries,
                                                    EMPTY_HISTORY, _utc(at))
            self.engine_calls += 1
        # Fewer attempts than any cap: the frequency cap cannot fire, and no other rule reads attempts. So the
        # decision is the empty history's, and counting needs no cap check (fewer in all than the limit).
        if key and found.counts_attempt:
            if kept:
                self.state.attempt_now(self.professional, key, _utc(at))
            elif times is None:
                self._times[key] = [at]
            else:
                times.append(at)
        return found

    def run(self, calls: Sequence[Call], order: Iterable[int], times: Sequence[float],
            on_result: Callable[[Result], None] | None = None) -> list[Result | None]:
        """Every call of the trace decided in ``order`` (time order), as :meth:`decide` and :meth:`record` would
        one by one: the results at the calls' positions (None for refusal and opt-out lines).

        :meth:`decide`'s shortcut with what a call needs looked up once per campaign and dialled string
        (:meth:`_entry`) and the loop's state in local variables: per call, two dictionary look-ups and a
        signature's, where :meth:`decide` spends as much again on attributes and a call frame (a third of the
        time of an offline replay). Any call the shortcut does not cover goes to :meth:`decide` itself.
        tests/replay/test_offline.py checks it against the engine alone, call by call."""
        out: list[Result | None] = [None] * len(calls)
        # tuple.__new__(Result, fields) is what Result._make does, without its Python frame per call.
        make = cast(Callable[[tuple[object, ...]], Result], functools.partial(tuple.__new__, Result))
        decide = self.decide
        if not self.shortcuts:
            for i in order:
                call = calls[i]
                if call.event is not _CALL:
                    self.record(call, _utc(times[i]))
                    continue
                d = decide(call, times[i])
                out[i] = res = make((i + 1, call, d.verdict, d.reason or "", d.would_block, "", None, "", "", 0.0))
                if on_result is not None:
                    on_result(res)
            return out
        entries = self._entries
        kept = self._kept
        horizon = self._horizon
        step = self._step
        rows = self._rows
        ignore = self.ignore_caller_id
        last = -1.0
        minute = self._minute
        for i in order:
            call = calls[i]
            at = times[i]
            if at != last:  # the minute's periods, shared with decide()
                last = at
                bucket = int(at // step)
                if bucket != self._bucket:
                    self._bucket = bucket
                    minute = self._minute = {}
            if call.event is not _CALL:
                self.record(call, _utc(at))
                continue
            campaign = call.campaign
            by_number = entries.get(campaign)
            if by_number is None:
                by_number = entries[campaign] = {}
            entry = by_number.get(call.number) or self._entry(call.number, campaign, by_number)
            key, attempts, base, zones, lowest = entry
            if key and (base < 0 or key in kept or (attempts and (attempts[0] < at - horizon
                                                                 or len(attempts) >= lowest))):
                d = decide(call, at)  # the store's history, a cap that may be reached, or attempts to prune
                out[i] = res = make((i + 1, call, d.verdict, d.reason or "", d.would_block, "", None, "", "", 0.0))
                if on_result is not None:
                    on_result(res)
                continue
            period = minute.get(zones)
            if period is None:
                period = self._period(bucket, zones)
            sig = (base, None if ignore or not call.caller_id else call.caller_id, period)
            row = rows.get(sig) or self._row(sig, call, at)
            if key and row[1]:
                attempts.append(at)
            out[i] = res = make((i + 1, call, row[2], row[3], row[4], "", None, "", "", 0.0))
            if on_result is not None:
                on_result(res)
        return out

    def _entry(self, dialled: str, campaign: str, by_number: dict[str, _Entry]) -> _Entry:
        """What :meth:`run` needs of a dialled string in a campaign: its key, its attempts list (shared with
        :meth:`decide` through ``_times``), its signature but the caller ID and the clock as a small int, its
        zones and the campaign's lowest cap. Its signature is -1 when no signature may serve it."""
        number = self.normaliser.parse(dialled)  # once per campaign and string: no memo of its own needed
        key = number.key
        lists, lowest, dated = self._campaigns.get(campaign) or self._campaign(campaign)
        mask = 0
        for bit, members in enumerate(lists):
            if key in members:
                mask |= 1 << bit
        signature = number_signature(number)
        zones = signature[2]
        part = (campaign, *signature, mask)
        base = self._bases.get(part)
        if base is None:
            base = self._bases[part] = len(self._bases)
        if mask & dated:
            base = -1  # a member of a dated list: decided by decide(), never from a signature
        attempts = self._times.setdefault(key, []) if key and key not in self._kept else []
        if len(by_number) >= _NUMBER_MEMO:
            by_number.clear()
        found = by_number[dialled] = (key, attempts, base, zones, lowest)
        return found

    def _row(self, sig: tuple[object, ...], call: Call, at: float) -> tuple[Decision, bool, str, str, bool]:
        """The empty history's decision for a signature, and what a Result takes of it."""
        number = self.number(call.number)
        caller = sig[1]
        assert caller is None or isinstance(caller, str)
        d = self.engine.decide(EngineCall(number, call.campaign, caller), self.registries, EMPTY_HISTORY, _utc(at))
        self.engine_calls += 1
        rows = self._rows
        if len(rows) >= _DECISION_MEMO:
            rows.clear()
        found = rows[sig] = (d, d.counts_attempt, d.verdict, d.reason or "", d.would_block)
        return found

    def _ident(self, dialled: str) -> tuple[Number, int, tuple[str, ...]]:
        """The number parsed, its (kind, region, zones, area code) as a small int (a signature hashes ints fast),
        and every zone its callee may be in."""
        number = self.normaliser.parse(dialled)
        idents = self._idents
        if len(idents) >= _NUMBER_MEMO:
            idents.clear()
        kinds = self._kinds
        part = number_signature(number)
        zones = part[2]
        ident = kinds.get(part)
        if ident is None:
            ident = kinds[part] = len(kinds)
        found = idents[dialled] = (number, ident, zones)
        return found

    def _keep(self, key: int) -> None:
        """Move a number's attempts into the store, in their order (the list the store would have built)."""
        self._kept.add(key)
        times = self._times.pop(key, None)
        if times:
            state, professional = self.state, self.professional
            for t in times:
                state.attempt_now(professional, key, _utc(t))

    def _period(self, bucket: int, zones: tuple[str, ...]) -> int:
        """What the rules read of the clock in this minute, in the callee's zones: each zone's local date, and
        where its local time falls among every pack's hours windows of that weekday (inside the i-th: i; in
        the gap before it: -1 - i); as a small int. Two minutes with one period get one decision."""
        parts = []
        for lt in local_times(_utc(bucket * self._step), zones, self.engine.settings.fallback_zone):
            t = lt.time()
            parts.append((lt.date(), tuple(_position(hours.get(lt.isoweekday(), ()), t) for hours in self._hours)))
        period = tuple(parts)
        periods = self._periods
        found = periods.get(period)
        if found is None:
            found = periods[period] = len(periods)
        self._minute[zones] = found
        return found

    def _exact(self, number: Number, campaign: str, caller: str | None, now: datetime) -> Decision:
        """The engine with the number's whole history, then the count: ``Gateway.check``'s own sequence."""
        key = number.key
        if key and key not in self._kept:
            self._keep(key)
        state = self.state
        history = state.history_now(self.professional, key) if key else EMPTY_HISTORY
        decision = self.engine.decide(EngineCall(number, campaign, caller), self.registries, history, now)
        self.engine_calls += 1
        if key and decision.counts_attempt and not state.attempt_now(self.professional, key, now, decision.cap):
            return decision.over_cap()
        return decision

    def record(self, call: Call, now: datetime) -> None:
        """A refusal or opt-out line of the trace: the history the gateway's routes would have recorded."""
        key = self.number(call.number).key
        if not key:
            return
        if key not in self._kept:
            self._keep(key)
        if call.event is _REFUSAL:
            self.state.refusal_now(self.professional, key, now)
        elif call.event is _OPTOUT:
            self.state.optout_now(self.professional, key, now)


def _position(windows: Sequence[tuple[time, time]], t: time) -> int:
    """Inside the i-th window: i; before it (and after the previous one): -1 - i."""
    for i, (lo, hi) in enumerate(windows):
        if t < lo:
            return -1 - i
        if t < hi:
            return i
    return -1 - len(windows)


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _whole_minutes() -> bool:
    """Whether every pack's hours windows start and end on a whole minute (then a minute decides alike)."""
    return all(t.second == 0 and t.microsecond == 0 for hours in hours_tables(PACKS) for windows in hours.values()
               for window in windows for t in window)


@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector off while a trace is read and decided, back to its state after.

    Calls, numbers, decisions and results are acyclic tuples, freed by reference counting as ever; but a
    replay allocates millions of them while keeping the trace alive, and each full collection walks the whole
    trace again: a third of an offline replay's time went there (bench/replay.py).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def untimed(calls: Sequence[Call]) -> list[Call]:
    """The calls an offline replay cannot place in time."""
    return [c for c in calls if c.at is None]


def replay_offline(calls: Sequence[Call], deciders: Sequence[OfflineDecider],
                   on_result: Callable[[Result], None] | None = None) -> list[list[Result]]:
    """Decide every call (refusal and opt-out lines only build the history) under each decider, in time order.

    Returns one list per decider, in the trace's order, of the calls' results (``seq``: 1-based position in the
    trace, its refusal and opt-out lines included). Every call must have a time (see :func:`untimed`).
    """
    times = [c.at or 0.0 for c in calls]
    # sorted() is stable: ties keep the file's order; a trace already in time order (the usual) is kept as is.
    order: Sequence[int] = range(len(calls)) if times == sorted(times) else \
        sorted(range(len(calls)), key=times.__getitem__)
    # One decider after the other over the whole trace (each has its own history: the same results as call by
    # call), the progress fed by the last.
    out = [d.run(calls, order, times, on_result if n == len(deciders) - 1 else None) for n, d in enumerate(deciders)]
    return [[r for r in results if r is not None] for results in out]


@dataclass(frozen=True, slots=True)
class Shift:
    """How a trace was moved: its first local day, where that day landed, and by how many weeks."""

    first_day: date
    to_day: date
    weeks: int

    def describe(self) -> str:
        if self.weeks == 0:
            return f"not shifted: the trace already starts on {self.first_day:%A %Y-%m-%d}"
        return (f"shifted by {self.weeks} weeks: {self.first_day:%A %Y-%m-%d} -> {self.to_day:%A %Y-%m-%d}, "
                "same weekdays and local times")


def shift_weeks(calls: Sequence[Call], to: date, zone: tzinfo) -> tuple[list[Call], Shift]:
    """The calls moved so that the trace's first day (in ``zone``) falls on the first ``to``-or-later date with
    the same weekday: a whole number of weeks, added to each call's wall-clock time in ``zone`` (a summer-time
    change in between keeps 10:30 at 10:30). Calls without a time stay without one."""
    times = [c.at for c in calls if c.at is not None]
    if not times:
        raise ValueError("no call has a time: nothing to shift")
    first = datetime.fromtimestamp(min(times), zone).date()
    landing = to + timedelta(days=(first.weekday() - to.weekday()) % 7)
    weeks = (landing - first).days // 7
    if weeks == 0:
        return list(calls), Shift(first, landing, 0)
    step = timedelta(weeks=weeks)

    def moved(at: float) -> float:
        wall = datetime.fromtimestamp(at, zone).replace(tzinfo=None) + step
        return wall.replace(tzinfo=zone).timestamp()

    out = [c if c.at is None else _with_time(c, moved(c.at)) for c in calls]
    return out, Shift(first, landing, weeks)


def _with_time(c: Call, at: float) -> Call:
    return c._replace(at=at)


# -- comparing two configurations ---------------------------------------------------------------------------------

ALLOWED = "allowed"  # the label of an ALLOW that gives no reason (the reason column is empty)


def label(r: Result) -> str:
    """A call's outcome in a comparison: its reason code; an allowed call with none, ``allowed``; monitor mode's
    would-be blocks keep their reason (the verdict says ALLOW)."""
    return r.reason or (ALLOWED if r.verdict == "ALLOW" else "none")


@dataclass(frozen=True, slots=True)
class Difference:
    """One call decided differently under A and B."""

    a: Result
    b: Result


def differences(a: Sequence[Result], b: Sequence[Result]) -> list[Difference]:
    """The calls whose verdict or reason differs (both lists from one :func:`replay_offline`, same order)."""
    return [Difference(x, y) for x, y in zip(a, b, strict=True) if x.verdict != y.verdict or x.reason != y.reason]


def group_differences(diffs: Sequence[Difference]) -> list[tuple[str, str, int]]:
    """(reason under A, reason under B, calls), most calls first."""
    counts = Counter((label(d.a), label(d.b)) for d in diffs)
    return [(a, b, n) for (a, b), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

