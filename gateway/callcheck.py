"""One call's check, sans-I/O: the decision with the number's history, its count and its audit record.

:class:`CallCheck` owns no store, no audit log and no clock (``now`` is given): it says what it needs next
(:attr:`CallCheck.need`) and takes the answer, as :mod:`gateway.agi.session` does for a FastAGI call. Its
needs, in the order a call meets them:

- ``HISTORY``: the number's history (``key``) -> :meth:`~CallCheck.receive_history`;
- ``TRIP``: a store that reads and counts in one round trip (Redis) reads the history and counts the attempt
  against ``cap`` when ``counting`` -> :meth:`~CallCheck.receive_trip`;
- ``FORGET``: take back the attempt counted provisionally by the trip (``member``) -> :meth:`~CallCheck.forgotten`;
- ``COUNT``: count the attempt at ``now`` against ``cap`` -> :meth:`~CallCheck.receive_count`;
- ``QUEUE``: queue the audit ``record``, not waited for (a BLOCK) -> :meth:`~CallCheck.committed`;
- ``COMMIT``: the audit ``record`` durable before the answer (an ALLOW) -> :meth:`~CallCheck.committed`;
- ``DONE``: :attr:`~CallCheck.outcome` is the answer.

A store that cannot answer is :meth:`~CallCheck.state_failed` (``state_failure``: closed or still loading
blocks ``state_unavailable``; open decides without the history, or leaves the attempt uncounted); an audit
log that cannot commit is :meth:`~CallCheck.audit_failed` (the call is refused ``audit_unavailable``: an ALLOW
never goes unaudited). Whoever drives it (``Gateway``: synchronously for the embedded store, with awaits for
a remote one, or from the audit log's commit callback) only does the I/O it is asked for. So every sequence,
failures included, is unit-tested without a store (tests/test_callcheck.py).

The need is an attribute, not a method, and a need's data are the check's own attributes: a call through the
embedded store allocates nothing but the check, its decision and its record.
"""

from __future__ import annotations

import enum
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from gateway.audit.record import AuditRecord, AuditUnavailable
from gateway.numbers import Number
from gateway.policy.decision import Decision, Reason, Verdict
from gateway.policy.engine import Call, Engine
from gateway.registry.model import Registries
from gateway.state.model import EMPTY_HISTORY, Cap, Counted, History, StateLoading, StateUnavailable, Trip

__all__ = ["CallCheck", "CheckPlan", "Need", "Outcome", "new_decision_id"]

log = logging.getLogger("gateway.service")  # the call path's log lines keep the logger operators filter on

# Seeded once from the OS: ids need to be unique, not secret, and a getrandbits() costs no system call.
_ID_RANDOM = random.Random(secrets.token_bytes(16))


def new_decision_id(now: datetime) -> str:
    """Time-ordered and unique across gateways: 12 hex digits of milliseconds + 10 random hex digits."""
    return f"{int(now.timestamp() * 1000):012x}{_ID_RANDOM.getrandbits(40):010x}"


class Need(enum.Enum):
    HISTORY = "history"
    TRIP = "trip"
    FORGET = "forget"
    COUNT = "count"
    QUEUE = "queue"
    COMMIT = "commit"
    DONE = "done"


# Members read through their enum class cost about 50 ns each (CPython 3.11): the per-call path reads these.
HISTORY: Final = Need.HISTORY
TRIP: Final = Need.TRIP
FORGET: Final = Need.FORGET
COUNT: Final = Need.COUNT
QUEUE: Final = Need.QUEUE
COMMIT: Final = Need.COMMIT
DONE: Final = Need.DONE
_ALLOW: Final = Verdict.ALLOW
_COUNTED: Final = Counted.COUNTED
_NOT_TRIED: Final = Counted.NOT_TRIED


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    decision_id: str
    number: Number
    record: AuditRecord


@dataclass(frozen=True, slots=True)
class CheckPlan:
    """What every check of one configuration shares (rebuilt when the config changes)."""

    engine: Engine
    closed: bool  # ``state_failure = "closed"``: no decision without the history or the count
    audited: bool  # an audit log records the checks that ask for it
    durable_allow: bool  # ``[audit] durable_allow``: an ALLOW waits for its record's commit
    one_trip: bool  # the state store reads and counts in one round trip (``TRIP``)
    new_id: Callable[[datetime], str] = new_decision_id


class CallCheck:
    """One call's check; see the module docstring. ``record``: audit it; ``count``: count an allowed call as an
    attempt (only when recorded: an attempt is never counted unaudited)."""

    __slots__ = (
        "call",
        "caller_id",
        "cap",
        "channel",
        "count",
        "counting",
        "decision",
        "dialled",
        "key",
        "member",
        "need",
        "now",
        "outcome",
        "plan",
        "record",
        "regs",
        "source",
        "started",
        "to_record",
        "uniqueid",
    )

    def __init__(self, plan: CheckPlan, regs: Registries, number: Number, dialled: str, campaign: str,
                 caller_id: str | None, now: datetime, record: bool = True, count: bool = True,
                 channel: str = "", uniqueid: str = "", source: str = "agi", started: float = 0.0) -> None:
        self.plan = plan
        self.regs = regs
        self.call = call = Call(number, campaign, caller_id)
        self.dialled = dialled
        self.caller_id = caller_id
        self.now = now
        self.to_record = record
        self.count = counting = record and count
        self.channel = channel
        self.uniqueid = uniqueid
        self.source = source
        self.started = started  # the driver's, for the observers' timing
        self.key = key = number.key
        self.cap: Cap | None = None
        self.decision: Decision | None = None
        self.record: AuditRecord | None = None
        self.outcome: Outcome | None = None
        if not key:
            self.need = DONE
            self._conclude(plan.engine.decide(call, regs, EMPTY_HISTORY, now))
        elif plan.one_trip:
            # What to count is known before the history: the decision on an empty history says whether the call
            # would be counted and against which cap (the cap depends on the campaign and the callee's calendar,
            # not on the history; history only adds blocks, except a consent recorded at a call, which can lift
            # a no_consent: such a call is counted by a second trip). The script counts it against that cap.
            self.counting = False
            if counting:
                intent = plan.engine.decide(call, regs, EMPTY_HISTORY, now)
                self.counting = intent.counts_attempt
                self.cap = intent.cap
            self.need = TRIP
        else:
            self.need = HISTORY

    # -- answers --------------------------------------------------------------------------------------------------
    def receive_history(self, history: History) -> None:
        if self.need is not HISTORY:
            raise RuntimeError(f"a history given while the check needs {self.need.value}")
        d = self.plan.engine.decide(self.call, self.regs, history, self.now)
        if self.count and d.counts_attempt:  # _decided, inlined: the path of every call
            self.decision = d
            self.cap = d.cap
            self.need = COUNT
        else:
            self._conclude(d)

    def receive_trip(self, trip: Trip) -> None:
        if self.need is not TRIP:
            raise RuntimeError(f"a trip given while the check needs {self.need.value}")
        d = self.plan.engine.decide(self.call, self.regs, trip.history, self.now)
        counted = trip.counted
        if self.count and d.counts_attempt and d.cap == self.cap and counted is not _NOT_TRIED:
            self._conclude(d if counted is _COUNTED else d.over_cap())
        elif counted is _COUNTED:  # counted, but this decision does not count the call (or not so): take it back
            self.decision = d
            self.member = trip.member
            self.need = FORGET
        else:
            self._decided(d)

    def forgotten(self) -> None:
        if self.need is not FORGET:
            raise RuntimeError(f"forgotten while the check needs {self.need.value}")
        assert self.decision is not None
        self._decided(self.decision)

    def receive_count(self, counted: bool) -> None:
        """Whether the attempt was counted (False: the cap was reached meanwhile, the call is over its cap)."""
        if self.need is not COUNT:
            raise RuntimeError(f"a count given while the check needs {self.need.value}")
        d = self.decision
        assert d is not None
        self._conclude(d if counted else d.over_cap())

    def committed(self) -> None:
        """The audit record is queued (``QUEUE``) or durable (``COMMIT``)."""
        if self.need is not COMMIT and self.need is not QUEUE:
            raise RuntimeError(f"committed while the check needs {self.need.value}")
        self._finish()

    def state_failed(self, e: StateUnavailable) -> None:
        """The state store could not answer the need (``HISTORY``, ``TRIP``, ``FORGET`` or ``COUNT``)."""
        need = self.need
        closed = self.plan.closed or isinstance(e, StateLoading)  # never a decision on an empty history at start-up
        if need is HISTORY or need is TRIP:
            if closed:
                number = self.call.number
                self._conclude(Decision.unavailable(Reason.STATE_UNAVAILABLE, number.e164, self.call.campaign_name,
                                                    f"call history unavailable: {e}"))
                return
            log.warning("state unavailable, deciding without history (state_failure = open): %s", e)
            if need is HISTORY:
                self.receive_history(EMPTY_HISTORY)
            else:  # nothing counted: a second trip counts it
                self.receive_trip(Trip(EMPTY_HISTORY, _NOT_TRIED, b""))
        elif need is FORGET:  # an attempt counted too many: the safe side of the cap
            log.warning("state: an attempt counted provisionally could not be taken back: %s", e)
            self.forgotten()
        elif need is COUNT:
            d = self.decision
            assert d is not None
            self._conclude(d.failed_closed(Reason.STATE_UNAVAILABLE, f"cannot count the attempt: {e}") if closed
                           else d)
        else:
            raise RuntimeError(f"a state failure while the check needs {need.value}")

    def audit_failed(self, e: AuditUnavailable) -> None:
        """The audit record cannot be queued or made durable: an allowed call must never go unaudited, it is
        refused instead (``audit_unavailable``)."""
        if self.need is not COMMIT and self.need is not QUEUE:
            raise RuntimeError(f"an audit failure while the check needs {self.need.value}")
        d, rec = self.decision, self.record
        assert d is not None and rec is not None
        log.error("audit unavailable, refusing call: %s", e)
        self.decision = d.failed_closed(Reason.AUDIT_UNAVAILABLE, str(e))
        self.record = rec._replace(verdict="BLOCK", reason=str(Reason.AUDIT_UNAVAILABLE), rule="audit_unavailable")
        self._finish()

    # -- the steps ------------------------------------------------------------------------------------------------
    def _decided(self, d: Decision) -> None:
        """The decision on the history: counted next when the call counts as an attempt, else concluded."""
        if self.count and d.counts_attempt:
            self.decision = d
            self.cap = d.cap
            self.need = COUNT
        else:
            self._conclude(d)

    def _conclude(self, d: Decision) -> None:
        """The final decision: its audit record, queued or committed when the check is recorded."""
        self.decision = d
        plan = self.plan
        now = self.now
        call = self.call
        number = call.number
        campaign = call.campaign_name
        caller_id = self.caller_id
        if caller_id is None:
            c = plan.engine.campaigns.get(campaign)
            caller_id = c.caller_id if c is not None else ""
        reason = d.reason
        self.record = rec = AuditRecord(
            plan.new_id(now), now.timestamp(), campaign, number.e164 or number.short or self.dialled[:32],
            str(d.verdict), str(reason) if reason is not None else None, d.rule, d.would_block, d.mode, d.regime,
            d.lists, caller_id, self.channel, self.uniqueid, self.source, d.detail)
        if plan.audited and self.to_record:
            self.need = COMMIT if d.verdict is _ALLOW and plan.durable_allow else QUEUE
        else:
            self.outcome = Outcome(d, rec.decision_id, number, rec)
            self.need = DONE

    def _finish(self) -> None:
        d, rec = self.decision, self.record
        assert d is not None and rec is not None
        self.outcome = Outcome(d, rec.decision_id, self.call.number, rec)
        self.need = DONE
