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
import dataclasses
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, cast

import phonenumbers

from gateway.audit.record import AuditRecord, AuditUnavailable
from gateway.callcheck import COMMIT as _COMMIT
from gateway.callcheck import COUNT as _COUNT
from gateway.callcheck import DONE as _DONE
from gateway.callcheck import HISTORY as _HISTORY
from gateway.callcheck import QUEUE as _QUEUE
from gateway.callcheck import TRIP as _TRIP
from gateway.callcheck import CallCheck, CheckPlan
from gateway.callcheck import Outcome as Outcome  # where the front ends import it from
from gateway.callcheck import new_decision_id as new_decision_id  # bench/pdd.py's
from gateway.config import Config, StateFailure, longest_consent_days
from gateway.numbers import Normaliser, Number, mask_digits
from gateway.policy.campaign import Mode
from gateway.policy.decision import Decision, Reason
from gateway.policy.engine import Call, Engine, Settings
from gateway.policy.packs import PACKS, callee_law
from gateway.registry import sidestore
from gateway.registry.holder import RegistryHolder
from gateway.registry.sidestore import LIVE_LIST, EntryKind, EntryOrigin, SideStore
from gateway.state import marker
from gateway.state.model import EMPTY_HISTORY, Cap, History, StateUnavailable, Trip
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
    (``forget_attempt``) in the rare case its decision does not count the call (see ``gateway.callcheck``).
    """

    async def read_and_count(self, professional: str, key: int, at: datetime, cap: Cap | None,
                             count: bool) -> Trip: ...

    async def forget_attempt(self, professional: str, key: int, member: bytes) -> None: ...


class Observer(Protocol):
    def decided(self, outcome: Outcome, seconds: float) -> None: ...


def engine_for(config: Config) -> Engine:
    """The engine for a config: its campaigns, each call judged by the law of the callee's country (or the
    campaign's forced ``jurisdiction``); ``home_country`` only says how to read national numbers."""
    g = config.gateway
    return Engine(dict(config.campaigns), callee_law(), Settings.of(g))


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
        self._engine = engine_for(config)
        self.state: StateStore = state or open_store(
            g.state, retention=self.engine.retention(PACKS), connect_timeout=g.state_connect_timeout,
            op_timeout=g.state_op_timeout, retry_interval=g.state_retry_interval,
            failures_to_open=g.state_failures_to_open, max_connections=g.state_max_connections,
            warm_connections=g.state_warm_connections, background_load=background_load)
        self._audit = audit
        self.clock = clock
        self.observers: list[Observer] = []
        self.professional = g.professional
        self.instance = os.environ.get("DNC_GATEWAY_INSTANCE", "")
        self.monotonic: Callable[[], float] = time.monotonic  # for rate-limited warnings (tests move it)
        self._unknown_warned: dict[str, float] = {}
        # Set when the store's coroutines never wait (see ImmediateState): check_now then needs no task.
        self._immediate: ImmediateState | None = cast(ImmediateState, self.state) \
            if getattr(self.state, "immediate", False) else None
        # Set when the store reads and counts in one round trip (see OneTripState).
        self._one_trip: OneTripState | None = cast(OneTripState, self.state) \
            if getattr(self.state, "one_trip", False) else None
        self._audit_then: CallbackAuditSink | None = None
        self._plan = self._plan_for(config)
        self.audit = audit

    @property
    def audit(self) -> AuditSink | None:
        return self._audit

    @audit.setter
    def audit(self, audit: AuditSink | None) -> None:
        """The audit log (``check --record`` opens it after the Gateway): the checks that follow record to it."""
        self._audit = audit
        # Set when the audit sink can call back once a record is durable (see finish_then).
        self._audit_then = cast(CallbackAuditSink, audit) if callable(getattr(audit, "append_then", None)) else None
        self._plan = dataclasses.replace(self._plan, audited=audit is not None)

    @property
    def engine(self) -> Engine:
        return self._engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        """Another engine (tests): the checks that follow decide with it."""
        self._engine = engine
        self._plan = dataclasses.replace(self._plan, engine=engine)

    def _plan_for(self, config: Config) -> CheckPlan:
        """What every check shares until the config changes (:meth:`reconfigure`)."""
        return CheckPlan(self._engine, config.gateway.state_failure == StateFailure.CLOSED, self.audit is not None,
                         config.audit.durable_allow, self._one_trip is not None)

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
        now = self.clock()
        done = 0
        for campaign in self.engine.campaigns:
            try:
                c = CallCheck(self._plan, self.holder.current, self.normaliser.parse(dialled), dialled, campaign,
                              None, now, record=False, count=False)
                if not self._advance(c):
                    await self._drive(c)
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
        self._engine = engine_for(config)
        self._plan = self._plan_for(config)
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
        return res if res.__class__ is Outcome else await self.finish(cast(CallCheck, res))

    def check_now(self, dialled: str, campaign: str, caller_id: str | None = None, *, channel: str = "",
                  uniqueid: str = "", source: str = "agi", record: bool = True, count: bool = True,
                  now: datetime | None = None) -> Outcome | CallCheck:
        """:meth:`check`, as far as it goes without waiting: its Outcome, or the :class:`CallCheck` stopped at
        the need that must be awaited, which :meth:`finish` (awaited) or :meth:`finish_then` (called back)
        completes. Nothing is done twice.

        ``record``: audit the decision; ``count``: count an allowed call as an attempt, only when recorded
        (see the module docstring). With the embedded state store and no durable audit record to wait for (a
        BLOCK, or no audit log), the whole call runs here: the FastAGI server then answers without a task.
        """
        started = time.perf_counter()
        c = CallCheck(self._plan, self.holder.current, self.normaliser.parse(dialled), dialled, campaign, caller_id,
                      now or self.clock(), record, count, channel, uniqueid, source, started)  # positional: faster
        return self._done(c) if self._advance(c) else c

    def _advance(self, c: CallCheck) -> bool:
        """Answer the check's needs that need no waiting (the embedded store, the audit queue); True once done."""
        store = self._immediate
        while True:
            need = c.need
            if need is _DONE:
                return True
            if need is _QUEUE:
                audit = self._audit
                assert audit is not None
                try:
                    audit.append_nowait(cast(AuditRecord, c.record))
                except AuditUnavailable as e:
                    c.audit_failed(e)
                    continue
                c.committed()
            elif store is None:
                return False
            elif need is _HISTORY:
                try:
                    history = store.history_now(self.professional, c.key)
                except StateUnavailable as e:
                    c.state_failed(e)
                    continue
                c.receive_history(history)
            elif need is _COUNT:
                try:
                    counted = store.attempt_now(self.professional, c.key, c.now, c.cap)
                except StateUnavailable as e:
                    c.state_failed(e)
                    continue
                c.receive_count(counted)
            else:
                return False

    async def finish(self, c: CallCheck) -> Outcome:
        """Drive a check to its Outcome, awaiting the state store and the durable audit record."""
        await self._drive(c)
        return self._done(c)

    async def _drive(self, c: CallCheck) -> None:
        while not self._advance(c):
            need = c.need
            if need is _COMMIT:
                assert self._audit is not None and c.record is not None
                try:
                    await self._audit.append(c.record, durable=True)
                except AuditUnavailable as e:
                    c.audit_failed(e)
                    continue
                c.committed()
                continue
            try:
                if need is _HISTORY:
                    c.receive_history(await self.state.history(self.professional, c.key))
                elif need is _COUNT:
                    c.receive_count(await self.state.record_attempt(self.professional, c.key, c.now, c.cap))
                elif need is _TRIP:
                    assert self._one_trip is not None
                    c.receive_trip(await self._one_trip.read_and_count(self.professional, c.key, c.now, c.cap,
                                                                       c.counting))
                else:  # _FORGET
                    assert self._one_trip is not None
                    await self._one_trip.forget_attempt(self.professional, c.key, c.member)
                    c.forgotten()
            except StateUnavailable as e:
                c.state_failed(e)

    def finish_then(self, c: CallCheck, done: Callable[[Outcome], None]) -> bool:
        """Have the audit log finish a check that waits only for its durable record: ``done(outcome)`` is called
        on the loop from the wake-up of the record's commit group, once committed (or known lost: the call is then
        refused), never from within this call. False: not so (a remote store to await, an audit log that cannot
        call back, or the record that could not even be queued): ``await finish(c)`` instead.

        That is the FastAGI and SIP servers' path for an audited ALLOW: an awaited coroutine would cost a task, a
        future and the frames resumed between them on every call.
        """
        sink = self._audit_then
        if c.need is not _COMMIT or sink is None:
            return False

        def committed(e: AuditUnavailable | None) -> None:
            if e is None:
                c.committed()
            else:
                c.audit_failed(e)
            done(self._done(c))

        try:
            sink.append_then(cast(AuditRecord, c.record), committed)
        except AuditUnavailable as e:
            c.audit_failed(e)
            return False
        return True

    def _done(self, c: CallCheck) -> Outcome:
        outcome = cast(Outcome, c.outcome)
        decision = outcome.decision
        elapsed = time.perf_counter() - c.started
        for obs in self.observers:
            try:
                obs.decided(outcome, elapsed)
            except Exception:  # an observer must never break the call path
                log.exception("observer failed")
        if decision.reason is Reason.UNKNOWN_CAMPAIGN:
            self._warn_unknown_campaign(outcome.record.campaign)
        # Blocks at INFO (a supervisor's log), allows at DEBUG: thousands a second would drown the log.
        level = logging.INFO if decision.would_block else logging.DEBUG
        if log.isEnabledFor(level):
            log.log(level, "%s %s%s campaign=%s reason=%s id=%s", decision.verdict, outcome.number.masked or "-",
                    " (monitor)" if decision.mode == Mode.MONITOR and decision.would_block else "",
                    mask_digits(outcome.record.campaign),
                    decision.reason, outcome.decision_id)
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
