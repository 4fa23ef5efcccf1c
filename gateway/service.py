"""The gateway service: one call in, one decision out, with its side effects in order.

Every front end (FastAGI, HTTP API, CLI, replay) goes through ``Gateway.check``
so that a call is screened the same way whatever asks: normalise, read the
number's history, decide (pure), count the attempt atomically, audit (durably
before an ALLOW is answered), then tell the observers (metrics, live page).

Two switches say which side effects a check has: ``record`` (audit it; False: a dry run nobody keeps,
``/api/check``) and ``count`` (count an allowed call as an attempt; only with ``record``: an attempt is never
counted unaudited). A dry run that must leave a trace (FastAGI's ``dryrun`` route, which replays use) is
``record=True, count=False``: audited with its ``source``, and the number's history left as it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import sqlite3
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

import phonenumbers

from gateway.audit.record import AuditRecord, AuditUnavailable
from gateway.config import Config, StateFailure, longest_consent_days
from gateway.numbers import Normaliser, Number, mask_digits
from gateway.policy.campaign import Mode
from gateway.policy.decision import Decision, Reason, Verdict
from gateway.policy.engine import Call, Engine, Settings
from gateway.policy.packs import PACKS, callee_law
from gateway.registry import sidestore
from gateway.registry.holder import RegistryHolder
from gateway.registry.sidestore import LIVE_LIST, EntryKind, EntryOrigin, SideStore
from gateway.state import marker
from gateway.state.model import EMPTY_HISTORY, Cap, Counted, History, StateLoading, StateUnavailable, Trip
from gateway.state.store import StateStore, open_store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
UNKNOWN_CAMPAIGN_WARN_EVERY = 60.0  # seconds between two warnings about one unknown campaign name
# How far in the future a consent's collection time may be (clocks of the CRM and the gateway differ a little);
# beyond it the consent is refused: a consent dated tomorrow would make today's calls look covered.
COLLECTION_SKEW = timedelta(minutes=5)


def utc_now() -> datetime:
    return datetime.now(UTC)


class ProofUnavailable(Exception):
    """The side store cannot record a consent's proof: the consent is not recorded (no consent without proof)."""


class AuditSink(Protocol):
    async def append(self, record: AuditRecord, *, durable: bool) -> None:
        """Queue a record; with ``durable``, return only once it is committed (or raise AuditUnavailable)."""
        ...

    def append_nowait(self, record: AuditRecord) -> None:
        """Queue a record that need not be durable before the answer (raise AuditUnavailable if it cannot be)."""
        ...


class CallbackAuditSink(Protocol):
    """An audit sink that can call back instead of being awaited (:class:`gateway.audit.AuditLog`)."""

    def append_then(self, record: AuditRecord, done: Callable[[AuditUnavailable | None], None]) -> None:
        """Queue a durable record; ``done(None)`` on the loop once committed, ``done(error)`` if it cannot be
        (AuditUnavailable at once if it cannot even be queued)."""
        ...


class ImmediateState(Protocol):
    """A state store whose answers need no waiting (the embedded one): the same calls, not coroutines."""

    def history_now(self, professional: str, key: int) -> History: ...

    def attempt_now(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool: ...


class OneTripState(Protocol):
    """A state store that reads a number's history and counts the attempt in one round trip (Redis).

    The count is provisional: the service decides on the history returned, then takes the count back
    (``forget_attempt``) in the rare case its decision does not count the call (see ``Gateway._decide_one_trip``).
    """

    async def read_and_count(self, professional: str, key: int, at: datetime, cap: Cap | None,
                             count: bool) -> Trip: ...

    async def forget_attempt(self, professional: str, key: int, member: bytes) -> None: ...


class Observer(Protocol):
    def decided(self, outcome: Outcome, seconds: float) -> None: ...


# Seeded once from the OS: ids need to be unique, not secret, and a getrandbits() costs no system call.
_ID_RANDOM = random.Random(secrets.token_bytes(16))


def new_decision_id(now: datetime) -> str:
    """Time-ordered and unique across gateways: 12 hex digits of milliseconds + 10 random hex digits."""
    return f"{int(now.timestamp() * 1000):012x}{_ID_RANDOM.getrandbits(40):010x}"


def _unaudited(decision: Decision, rec: AuditRecord, e: AuditUnavailable) -> tuple[Decision, AuditRecord]:
    """An allowed call must never go unaudited: refuse it rather than allow it blind."""
    log.error("audit unavailable, refusing call: %s", e)
    return (decision.failed_closed(Reason.AUDIT_UNAVAILABLE, str(e)),
            rec._replace(verdict="BLOCK", reason=str(Reason.AUDIT_UNAVAILABLE), rule="audit_unavailable"))


def engine_for(config: Config) -> Engine:
    """The engine for a config: its campaigns, each call judged by the law of the callee's country (or the
    campaign's forced ``jurisdiction``); ``home_country`` only says how to read national numbers."""
    g = config.gateway
    return Engine(dict(config.campaigns), callee_law(), Settings.of(g))


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    decision_id: str
    number: Number
    record: AuditRecord


class Gateway:
    def __init__(self, config: Config, *, holder: RegistryHolder | None = None, state: StateStore | None = None,
                 audit: AuditSink | None = None, clock: Clock = utc_now, background_load: bool = False) -> None:
        """``background_load``: an embedded store reads its history after :meth:`start`, answering
        ``state_unavailable`` meanwhile (``serve``: listening at once); without it, before this returns."""
        g = config.gateway
        self.config = config
        self.normaliser = Normaliser(g.home_country, g.outside_line)
        self.holder = holder or RegistryHolder(
            config.lists, self.normaliser, sidestore.default_path(g.data_dir), clock=lambda: clock().timestamp(),
            proof_years=g.consent_proof_years, max_age_days=longest_consent_days(config.campaigns.values()))
        self.engine = engine_for(config)
        self.state: StateStore = state or open_store(
            g.state, retention=self.engine.retention(PACKS), connect_timeout=g.state_connect_timeout,
            op_timeout=g.state_op_timeout, retry_interval=g.state_retry_interval,
            failures_to_open=g.state_failures_to_open, max_connections=g.state_max_connections,
            warm_connections=g.state_warm_connections, background_load=background_load)
        self.audit = audit
        self.clock = clock
        self.observers: list[Observer] = []
        self.professional = g.professional
        self.instance = os.environ.get("DNC_GATEWAY_INSTANCE", "")
        self.monotonic: Callable[[], float] = time.monotonic  # for rate-limited warnings (tests move it)
        self._unknown_warned: dict[str, float] = {}
        # Set when the store's coroutines never wait (see ImmediateState): check_now then needs no task.
        self._immediate: ImmediateState | None = cast(ImmediateState, self.state) \
            if getattr(self.state, "immediate", False) else None
        # Set when the audit sink can call back once a record is durable (see check_now's ``then``).
        self._audit_then: CallbackAuditSink | None = cast(CallbackAuditSink, audit) \
            if callable(getattr(audit, "append_then", None)) else None
        # Set when the store reads and counts in one round trip (see OneTripState).
        self._one_trip: OneTripState | None = cast(OneTripState, self.state) \
            if getattr(self.state, "one_trip", False) else None

    async def start(self) -> None:
        await self.check_marker()
        await self.state.start()

    async def warm_up(self) -> int:
        """Run the decision path once per campaign, before the listeners open (``serve``): the first call of a
        shift then finds the number tables built, the engine's caches filled and, with Redis, the hot link open,
        the secret verified and the Lua script loaded. A dry read: nothing counted, audited or observed. Returns
        the campaigns decided; a failure is logged, never fatal (the calls will say it)."""
        example = phonenumbers.example_number(self.normaliser.home_country)
        e164 = phonenumbers.PhoneNumberFormat.E164
        dialled = phonenumbers.format_number(example, e164) if example else "+33123456789"
        number = self.normaliser.parse(dialled)
        now = self.clock()
        done = 0
        for campaign in self.engine.campaigns:
            try:
                store = self._immediate
                if store is not None:
                    self._decide_now(store, number, campaign, None, now, False)
                else:
                    await self._decide(number, campaign, None, now, False)
                done += 1
            except Exception as e:
                log.warning("warm-up of campaign %s failed: %s", mask_digits(campaign), e)
        return done
    async def check_marker(self) -> str:
        """A lost or replaced state store is noticed before its empty history decides anything
        (gateway.state.marker); "" when the store is the one this gateway wrote."""
        store = self.state
        if not isinstance(store, marker.Marked):
            return ""
        g = self.config.gateway
        try:
            return await marker.check(store, self.professional, g.data_dir, g.state.split("?")[0].split("@")[-1])
        except StateUnavailable as e:  # Redis down at start: checked again at its first (re)connection
            store.expect_marker(self.professional, marker.read_file(g.data_dir))
            log.warning("state: marker not checked at start (%s): it is after the first connection", e)
        except OSError as e:
            log.error("state: cannot read or write the marker in %s: %s (a lost store would go unnoticed)",
                      g.data_dir, e)
        return ""

    def reconfigure(self, config: Config) -> None:
        """A new config (SIGHUP): new campaigns and rules at once; the stores keep what the new windows need."""
        self.config = config
        self.engine = engine_for(config)
        self.state.set_retention(self.engine.retention(PACKS))

    async def close(self) -> None:
        await self.state.close()
        await self.holder.close()

    def decide(self, number: Number, campaign: str, caller_id: str | None, now: datetime) -> Decision:
        """A stateless decision (no history, nothing recorded): for scrub and dry runs."""
        return self.engine.decide(Call(number, campaign, caller_id), self.holder.current, EMPTY_HISTORY, now)

    async def check(self, dialled: str, campaign: str, caller_id: str | None = None, *, channel: str = "",
                    uniqueid: str = "", source: str = "agi", record: bool = True, count: bool = True,
                    now: datetime | None = None) -> Outcome:
        res = self.check_now(dialled, campaign, caller_id, channel=channel, uniqueid=uniqueid, source=source,
                             record=record, count=count, now=now)
        assert res is not None  # only a call with ``then`` leaves its outcome to a callback
        return res if isinstance(res, Outcome) else await res

    def check_now(self, dialled: str, campaign: str, caller_id: str | None = None, *, channel: str = "",
                  uniqueid: str = "", source: str = "agi", record: bool = True, count: bool = True,
                  now: datetime | None = None, then: Callable[[Outcome], None] | None = None
                  ) -> Outcome | Coroutine[Any, Any, Outcome] | None:
        """:meth:`check`, finished at once when nothing has to be awaited, else a coroutine that finishes it.

        ``record``: audit the decision; ``count``: count an allowed call as an attempt, only when recorded
        (see the module docstring).

        With the embedded state store and no durable audit record to wait for (a BLOCK, or no audit log),
        the whole call runs here: the FastAGI server then answers without a task per call. The coroutine,
        when there is one, carries on from where this stopped: nothing is done twice.

        ``then``: an outcome that waits only for its durable audit record is given to ``then`` by the audit log,
        on the loop, once the record is committed (or could not be: the call is then refused, as :meth:`check`
        does), and this returns None (never without ``then``). That is the FastAGI server's path for an audited
        ALLOW: the audit log's wake-up of the record's commit group calls ``then``, which writes the answer, where
        an awaited coroutine would cost a task, a future and the frames resumed between them on every call.
        ``then`` is called exactly once, never from within this call.
        """
        started = time.perf_counter()
        now = now or self.clock()
        number = self.normaliser.parse(dialled)
        counted = record and count
        store = self._immediate
        if store is None:
            return self._check_later(started, number, dialled, campaign, caller_id, channel, uniqueid, source,
                                     record, counted, now)
        decision = self._decide_now(store, number, campaign, caller_id, now, counted)
        return self._conclude(started, number, dialled, decision, campaign, caller_id, channel, uniqueid, source,
                              record, now, then)

    async def _check_later(self, started: float, number: Number, dialled: str, campaign: str, caller_id: str | None,
                           channel: str, uniqueid: str, source: str, record: bool, counted: bool,
                           now: datetime) -> Outcome:
        decision = await self._decide(number, campaign, caller_id, now, counted)
        res = self._conclude(started, number, dialled, decision, campaign, caller_id, channel, uniqueid, source,
                             record, now)
        assert res is not None  # without ``then``, never left to a callback
        return res if isinstance(res, Outcome) else await res

    def _conclude(self, started: float, number: Number, dialled: str, decision: Decision, campaign: str,
                  caller_id: str | None, channel: str, uniqueid: str, source: str, record: bool,
                  now: datetime, then: Callable[[Outcome], None] | None = None
                  ) -> Outcome | Coroutine[Any, Any, Outcome] | None:
        """Build the audit record and queue it; an ALLOW that must be durable first returns a coroutine, or with
        ``then`` (and an audit sink that calls back) None: the sink's callback finishes the call."""
        decision_id = new_decision_id(now)
        rec = AuditRecord(
            decision_id, now.timestamp(), campaign, number.e164 or number.short or dialled[:32],
            str(decision.verdict), str(decision.reason) if decision.reason else None, decision.rule,
            decision.would_block, decision.mode, decision.regime, decision.lists,
            caller_id if caller_id is not None else self._campaign_caller_id(campaign), channel, uniqueid, source,
            decision.detail)
        if self.audit is not None and record:
            if decision.verdict is Verdict.ALLOW and self.config.audit.durable_allow:
                sink = self._audit_then
                if then is None or sink is None:
                    return self._audited(started, number, decision, decision_id, rec)

                def committed(e: AuditUnavailable | None) -> None:
                    if e is None:
                        then(self._done(started, number, decision, decision_id, rec))
                    else:
                        refused, unaudited = _unaudited(decision, rec, e)
                        then(self._done(started, number, refused, decision_id, unaudited))

                try:
                    sink.append_then(rec, committed)
                    return None
                except AuditUnavailable as e:
                    decision, rec = _unaudited(decision, rec, e)
                    return self._done(started, number, decision, decision_id, rec)
            try:
                self.audit.append_nowait(rec)
            except AuditUnavailable as e:
                decision, rec = _unaudited(decision, rec, e)
        return self._done(started, number, decision, decision_id, rec)

    async def _audited(self, started: float, number: Number, decision: Decision, decision_id: str,
                       rec: AuditRecord) -> Outcome:
        assert self.audit is not None
        try:
            await self.audit.append(rec, durable=True)
        except AuditUnavailable as e:
            decision, rec = _unaudited(decision, rec, e)
        return self._done(started, number, decision, decision_id, rec)

    def _done(self, started: float, number: Number, decision: Decision, decision_id: str,
              rec: AuditRecord) -> Outcome:
        outcome = Outcome(decision, decision_id, number, rec)
        elapsed = time.perf_counter() - started
        for obs in self.observers:
            try:
                obs.decided(outcome, elapsed)
            except Exception:  # an observer must never break the call path
                log.exception("observer failed")
        if decision.reason is Reason.UNKNOWN_CAMPAIGN:
            self._warn_unknown_campaign(rec.campaign)
        # Blocks at INFO (a supervisor's log), allows at DEBUG: thousands a second would drown the log.
        level = logging.INFO if decision.would_block else logging.DEBUG
        if log.isEnabledFor(level):
            log.log(level, "%s %s%s campaign=%s reason=%s id=%s", decision.verdict, number.masked or "-",
                    " (monitor)" if decision.mode == Mode.MONITOR and decision.would_block else "",
                    mask_digits(rec.campaign),
                    decision.reason, decision_id)
        return outcome

    def _warn_unknown_campaign(self, name: str) -> None:
        """A dialplan sending a campaign name the config does not have is a misconfiguration that blocks every
        call it makes: say so at WARNING, naming it, once a minute per name (metrics keep it as "unknown")."""
        now = self.monotonic()
        warned = self._unknown_warned
        if now - warned.get(name, -UNKNOWN_CAMPAIGN_WARN_EVERY) < UNKNOWN_CAMPAIGN_WARN_EVERY:
            return
        if len(warned) >= 1024:  # names come from the dialplan: keep the memory bounded
            warned.clear()
        warned[name] = now
        log.warning("unknown campaign %r sent by the dialplan: its calls are blocked (unknown_campaign); "
                    "configured: %s", mask_digits(name[:64]), ", ".join(sorted(self.engine.campaigns)) or "none")

    def _campaign_caller_id(self, campaign: str) -> str:
        c = self.engine.campaigns.get(campaign)
        return c.caller_id if c is not None else ""

    # -- the decision with the number's history: once awaiting the state store, once not -----------------------
    # The two differ only by their awaits; what they decide lives in the helpers they share. One generator
    # driven both ways would remove the repetition, at the cost of a generator and its sends on every call.

    async def _decide(self, number: Number, campaign: str, caller_id: str | None, now: datetime,
                      count: bool) -> Decision:
        call = Call(number, campaign, caller_id)
        key = number.key
        if not key:
            return self.engine.decide(call, self.holder.current, EMPTY_HISTORY, now)
        if self._one_trip is not None:
            return await self._decide_one_trip(self._one_trip, call, key, now, count)
        try:
            history = await self.state.history(self.professional, key)
        except StateUnavailable as e:
            down = self._without_history(number, campaign, e)
            if down is not None:
                return down
            history = EMPTY_HISTORY
        decision = self.engine.decide(call, self.holder.current, history, now)
        if not (count and decision.counts_attempt):
            return decision
        try:
            counted = await self.state.record_attempt(self.professional, key, now, decision.cap)
        except StateUnavailable as e:
            return self._uncounted(decision, e)
        return decision if counted else decision.over_cap()

    def _decide_now(self, store: ImmediateState, number: Number, campaign: str, caller_id: str | None,
                    now: datetime, count: bool) -> Decision:
        call = Call(number, campaign, caller_id)
        key = number.key
        if not key:
            return self.engine.decide(call, self.holder.current, EMPTY_HISTORY, now)
        try:
            history = store.history_now(self.professional, key)
        except StateUnavailable as e:
            down = self._without_history(number, campaign, e)
            if down is not None:
                return down
            history = EMPTY_HISTORY
        decision = self.engine.decide(call, self.holder.current, history, now)
        if not (count and decision.counts_attempt):
            return decision
        try:
            counted = store.attempt_now(self.professional, key, now, decision.cap)
        except StateUnavailable as e:
            return self._uncounted(decision, e)
        return decision if counted else decision.over_cap()

    async def _decide_one_trip(self, store: OneTripState, call: Call, key: int, now: datetime,
                               count: bool) -> Decision:
        """:meth:`_decide` in one round trip: read the history and count the attempt in one script.

        The engine stays pure and decides on the history as it was before this call. What to count is known
        before the history: the decision on an empty history says whether the call would be counted and against
        which cap (the cap depends on the campaign and the callee's calendar, not on the history; history adds
        blocks, except a consent recorded at a call, which can lift a ``no_consent``: such a call was not counted
        by the script and is counted by a second trip below). The script counts it atomically against that cap,
        unless the number has a refusal or an opt-out on record (then the count waits for the decision: a second
        round trip, as before). When the final decision does not count the call after all, the count is taken
        back.
        """
        regs = self.holder.current
        intent = self.engine.decide(call, regs, EMPTY_HISTORY, now) if count else None
        counting = intent is not None and intent.counts_attempt
        cap = intent.cap if intent is not None else None
        try:
            trip = await store.read_and_count(self.professional, key, now, cap, counting)
        except StateUnavailable as e:
            down = self._without_history(call.number, call.campaign_name, e)
            if down is not None:
                return down
            trip = Trip(EMPTY_HISTORY, Counted.NOT_TRIED, b"")  # state_failure = open: count on a second try
        decision = self.engine.decide(call, regs, trip.history, now)
        counted = trip.counted
        if count and decision.counts_attempt and decision.cap == cap and counted is not Counted.NOT_TRIED:
            return decision if counted is Counted.COUNTED else decision.over_cap()
        if counted is Counted.COUNTED:  # counted, but this decision does not count the call (or not so)
            try:
                await store.forget_attempt(self.professional, key, trip.member)
            except StateUnavailable as e:  # an attempt counted too many: the safe side of the cap
                log.warning("state: an attempt counted provisionally could not be taken back: %s", e)
        if not (count and decision.counts_attempt):
            return decision
        try:
            recorded = await self.state.record_attempt(self.professional, key, now, decision.cap)
        except StateUnavailable as e:
            return self._uncounted(decision, e)
        return decision if recorded else decision.over_cap()

    def _without_history(self, number: Number, campaign: str, e: StateUnavailable) -> Decision | None:
        """The history cannot be read: a BLOCK (``state_failure = "closed"``, or still loading at start-up: never
        a decision on an empty history), or None to decide without it."""
        if self.config.gateway.state_failure == StateFailure.CLOSED or isinstance(e, StateLoading):
            return Decision.unavailable(Reason.STATE_UNAVAILABLE, number.e164, campaign,
                                        f"call history unavailable: {e}")
        log.warning("state unavailable, deciding without history (state_failure = open): %s", e)
        return None

    def _uncounted(self, decision: Decision, e: StateUnavailable) -> Decision:
        if self.config.gateway.state_failure == StateFailure.CLOSED or isinstance(e, StateLoading):
            return decision.failed_closed(Reason.STATE_UNAVAILABLE, f"cannot count the attempt: {e}")
        return decision

    def refusal_horizon(self) -> datetime:
        """The oldest refusal the state store keeps (its retention, derived from the packs): an older one would be
        acknowledged and then pruned, so the API refuses it instead."""
        return self.clock() - self.engine.retention(PACKS).kept_refusals

    async def refusal(self, dialled: str, *, now: datetime | None = None, channel: str = "",
                      origin: EntryOrigin = EntryOrigin.CALL, detail: str = "") -> Number:
        """The callee refused: starts the cooldown, and under the consent regime ends consent.

        The refusal goes to the state store (it decides, on every gateway sharing it), then ends the number's
        consents in the side store, with the channel it came through (``channel``: "call", "api", …; ``detail``:
        the Asterisk channel, say), so that the proof says when and how consent ended.
        """
        number = self.normaliser.parse(dialled)
        if number.key:
            at = now or self.clock()
            await self.state.record_refusal(self.professional, number.key, at)
            why = "refusal" + (f" ({detail})" if detail else "")
            revoked = await self._side(lambda s: s.revoke(None, number.key, at, why, channel=channel or str(origin),
                                                          kind=EntryKind.CONSENT), "refusal")
            if revoked:
                await self._refresh_side()
        return number

    async def optout(self, dialled: str, *, now: datetime | None = None,
                     origin: EntryOrigin = EntryOrigin.CALL) -> Number:
        """The callee asked never to be called again: internal do-not-call, effective at once (and its proof)."""
        number = self.normaliser.parse(dialled)
        if number.key:
            at = now or self.clock()
            await self.state.record_optout(self.professional, number.key, at)
            await self._side(lambda s: s.add(LIVE_LIST, number.key, EntryKind.OPTOUT, at, str(origin), now=at,
                                             channel=str(origin), origin=origin), "opt-out")
        return number

    async def consent(self, dialled: str, *, source: str, evidence: str = "", wording_version: str = "",
                      channel: str = "", extra: dict[str, str] | None = None, origin: EntryOrigin = EntryOrigin.CALL,
                      collected: datetime | None = None, now: datetime | None = None) -> Number:
        """The callee consented (asked to be called back, accepted on an inbound call, a signed form, …).

        Its proof goes to the side store first (a consent without proof must not count: ``ProofUnavailable``),
        then the state store, from which every gateway sharing it decides at the next call.
        """
        number = self.normaliser.parse(dialled)
        if (why := self.future_collection(collected)) is not None:
            raise ValueError(why)
        if number.key:
            at = now or self.clock()
            given = collected or at
            if await self._side(lambda s: s.add(
                    LIVE_LIST, number.key, EntryKind.CONSENT, given, source or str(origin), evidence, now=at,
                    wording_version=wording_version, channel=channel, extra=extra, origin=origin), "consent") < 0:
                raise ProofUnavailable(f"side store {self.holder.side_store}: cannot record the consent's proof")
            await self.state.record_consent(self.professional, number.key, given)
        return number

    def future_collection(self, collected: datetime | None) -> str | None:
        """Why a consent's collection time cannot be accepted (later than now, beyond a small skew), or None."""
        if collected is None:
            return None
        now = self.clock()
        if collected > now + COLLECTION_SKEW:
            return (f"collection time {collected.isoformat(timespec='seconds')} is in the future (now "
                    f"{now.isoformat(timespec='seconds')}, at most {int(COLLECTION_SKEW.total_seconds())} s ahead)")
        return None

    async def _side(self, write: Callable[[SideStore], int], what: str) -> int:
        """Run a side-store write in a worker thread; -1 (logged) when it fails, 0 without a side store."""
        holder = self.holder

        def run() -> int:
            with holder.side_lock:
                store = holder.side()
                return write(store) if store is not None else 0

        try:
            return await asyncio.get_running_loop().run_in_executor(None, run)
        except (sqlite3.Error, OSError, ValueError) as e:
            log.error("side store: %s not recorded as proof: %s", what, e)
            return -1

    async def _refresh_side(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.holder.refresh_side)
        except Exception:  # the state store already decides: a late snapshot is no reason to fail the call
            log.exception("side store: snapshot not refreshed")
