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

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from gateway.numbers import Normaliser, Number
from gateway.policy.decision import Decision
from gateway.policy.engine import Call as EngineCall
from gateway.policy.engine import Engine
from gateway.policy.packs import PACKS
from gateway.registry.model import Registries
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
_NUMBER_MEMO = 1 << 18  # distinct dialled strings kept parsed; a trace calls the same numbers again and again


class OfflineDecider:
    """One configuration's decisions over one trace, with the trace's own call history.

    Build one per replay (and one per configuration when comparing): its state starts empty.
    """

    def __init__(self, engine: Engine, registries: Registries, normaliser: Normaliser, professional: str, *,
                 ignore_caller_id: bool = False) -> None:
        self.engine = engine
        self.registries = registries
        self.normaliser = normaliser
        self.professional = professional
        self.ignore_caller_id = ignore_caller_id
        self.state = EmbeddedState(None, retention=engine.retention(PACKS))  # memory only: nothing shared
        self._numbers: dict[str, Number] = {}

    def number(self, dialled: str) -> Number:
        numbers = self._numbers
        found = numbers.get(dialled)
        if found is None:
            if len(numbers) >= _NUMBER_MEMO:
                numbers.clear()
            found = numbers[dialled] = self.normaliser.parse(dialled)
        return found

    def decide(self, call: Call, now: datetime) -> Decision:
        """The decision the gateway's ``check`` route would have made at ``now``, counting the attempt."""
        number = self.number(call.number)
        key = number.key
        # "" is what the trace has when the caller ID was anonymous or absent: as online, where no caller ID is
        # passed, the campaign's configured one applies (None).
        caller = None if self.ignore_caller_id or not call.caller_id else call.caller_id
        state = self.state
        prof = self.professional
        history = state.history_now(prof, key) if key else EMPTY_HISTORY
        decision = self.engine.decide(EngineCall(number, call.campaign, caller), self.registries, history, now)
        if key and decision.counts_attempt and not state.attempt_now(prof, key, now, decision.cap):
            return decision.over_cap()  # as the service does: the count is the cap's last word
        return decision

    def record(self, call: Call, now: datetime) -> None:
        """A refusal or opt-out line of the trace: the history the gateway's routes would have recorded."""
        key = self.number(call.number).key
        if not key:
            return
        if call.event is _REFUSAL:
            self.state.refusal_now(self.professional, key, now)
        elif call.event is _OPTOUT:
            self.state.optout_now(self.professional, key, now)


def untimed(calls: Sequence[Call]) -> list[Call]:
    """The calls an offline replay cannot place in time."""
    return [c for c in calls if c.at is None]


def _result(seq: int, call: Call, d: Decision) -> Result:
    return Result(seq, call, str(d.verdict), str(d.reason) if d.reason is not None else "", d.would_block)


def replay_offline(calls: Sequence[Call], deciders: Sequence[OfflineDecider],
                   on_result: Callable[[Result], None] | None = None) -> list[list[Result]]:
    """Decide every call (refusal and opt-out lines only build the history) under each decider, in time order.

    Returns one list per decider, in the trace's order, of the calls' results (``seq``: 1-based position in the
    trace, its refusal and opt-out lines included). Every call must have a time (see :func:`untimed`).
    """
    order = sorted(range(len(calls)), key=lambda i: calls[i].at or 0.0)  # sorted() is stable: ties keep file order
    out: list[list[Result | None]] = [[None] * len(calls) for _ in deciders]
    pairs = list(zip(deciders, out, strict=True))
    fromtimestamp = datetime.fromtimestamp
    for i in order:
        call = calls[i]
        assert call.at is not None
        now = fromtimestamp(call.at, UTC)
        if call.event is not _CALL:
            for decider, _ in pairs:
                decider.record(call, now)
            continue
        for decider, results in pairs:
            results[i] = res = _result(i + 1, call, decider.decide(call, now))
        if on_result is not None:
            on_result(res)
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
    return Call(c.number, c.campaign, c.caller_id, at, c.call_id, c.origin, c.event)


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

