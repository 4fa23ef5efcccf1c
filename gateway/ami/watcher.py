"""The AMI watcher: a thin asyncio adapter around :mod:`gateway.ami.events`.

It keeps one manager connection to Asterisk, in the background: ``start()`` returns at once even
when Asterisk is down, and the gateway answers calls whatever happens here. The connection uses
panoramisk's ``Manager`` for what it does well (Login, framing, action/response matching by
ActionID, event dispatch), with three changes, each because panoramisk 1.4 gets it wrong for us:

- *Connecting and reconnecting are ours.* ``Manager.connect`` retries at a fixed delay that
  ``int()`` truncates (0.2 s becomes 0: a busy loop) and reconnects by itself from
  ``connection_lost``. We open the TCP connection, hand it to ``Manager.connection_made`` (which
  installs the protocol and sends Login), and retry with a capped, jittered exponential backoff.
- *The ping watchdog is ours.* panoramisk's pinger sends ``Ping`` and never looks at the answer, so
  a half-open TCP connection (Asterisk frozen, a NAT dropped the flow) looks alive forever. We send
  ``Ping`` every ``ping_interval``; no ``Pong`` within ``ping_timeout`` closes the connection.
- *No action is ever re-sent.* On a lost connection panoramisk queues unanswered actions and sends
  them again after the next ``FullyBooted`` event. A ``Hangup`` re-sent minutes later could hit a
  channel name Asterisk has reused for another call. We pass a ``forgetable_actions`` that contains
  every action (so nothing is queued), override ``send_awaiting_actions`` to drop the queue, and
  use a fresh ``Manager`` per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from panoramisk.manager import Manager

from gateway.aio import cancel
from gateway.ami import backoff
from gateway.ami.events import Bypass, BypassRecord, CallTracker, Confirmed, Decided
from gateway.config import AmiSection
from gateway.numbers import mask
from gateway.policy.decision import Verdict

if TYPE_CHECKING:
    from gateway.service import Gateway, Outcome

log = logging.getLogger(__name__)

# Q.850 cause 21, "call rejected": what the dialplan uses for a blocked call too.
HANGUP_CAUSE = "21"
RECENT_BYPASSES = 100
# Events the Login asks for: calls (Newchannel, Dial*, Hangup) and dialplan (VarSet); nothing else.
EVENT_CLASSES = "call,dialplan"


class AmiMetrics(Protocol):
    def ami_connected(self, up: bool) -> None: ...
    def bypass(self, campaign: str) -> None: ...
    def attempt_confirmed(self) -> None: ...


class AmiError(Exception):
    """The manager connection failed in a way worth a new connection (refused login, no Pong, lost)."""


class _EveryAction:
    """A ``forgetable_actions`` that contains every action: panoramisk then never queues one for re-sending."""

    def __contains__(self, action: object) -> bool:
        return True


class _Manager(Manager):  # type: ignore[misc]  # panoramisk has no type hints
    def __init__(self, on_lost: Callable[[Any], None], **config: Any) -> None:
        super().__init__(forgetable_actions=_EveryAction(), **config)
        self._on_lost = on_lost

    def ping(self) -> None:
        """Disabled: the watcher's watchdog pings and checks the answer."""

    def connection_lost(self, exc: Any) -> None:
        """Tell the watcher instead of scheduling panoramisk's own reconnection."""
        self._connected = False
        pinger: asyncio.TimerHandle | None = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        self._on_lost(exc)

    async def send_awaiting_actions(self, *_: Any) -> None:
        """Never re-send an action from a previous connection (see the module docstring)."""
        self.awaiting_actions.clear()


_LONG_DIGITS = re.compile(r"\+?\d{9,}")


def mask_channel(name: str) -> str:
    """A channel name can hold the dialled number (``Local/0612345678@out-00000001;2``): mask it."""
    return _LONG_DIGITS.sub(lambda m: mask(m.group(0)), name)


async def _answer(fut: asyncio.Future[Any], lost: asyncio.Event, within: float, what: str) -> Any:
    """The response to an action, or AmiError when the connection is lost or Asterisk stays silent.

    The action's future is never cancelled: panoramisk's own callbacks read its result.
    """
    lost_wait = asyncio.ensure_future(lost.wait())
    try:
        done, _ = await asyncio.wait({fut, lost_wait}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost_wait.cancel()
    if fut in done:
        return fut.result()
    if lost.is_set():
        raise AmiError(f"connection lost while waiting for the answer to {what}")
    raise AmiError(f"no answer to {what} within {within:g}s")


class AmiWatcher:
    """Confirms attempts and flags bypasses from Asterisk's manager events; an observer of ``Gateway``."""

    def __init__(self, gateway: Gateway, config: AmiSection, metrics: AmiMetrics | None = None, *,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self.metrics = metrics
        self.tracker = CallTracker(config.trunk_prefix, config.decision_grace, gateway.normaliser.parse)
        self.connected = False
        self.reconnects = 0
        self.last_event_at: float | None = None
        self.recent_bypasses: deque[BypassRecord] = deque(maxlen=RECENT_BYPASSES)
        self._clock = clock
        self._wall = wall
        self._task: asyncio.Task[None] | None = None
        self._manager: _Manager | None = None
        self._closing = False
        self._answered_ping = False
        self._actions: set[asyncio.Task[None]] = set()

    # -- the gateway's side ----------------------------------------------------------------------

    def decided(self, outcome: Outcome, seconds: float) -> None:
        rec = outcome.record
        self.tracker.decided(
            Decided(outcome.decision_id, outcome.number.key, rec.campaign, outcome.decision.verdict is Verdict.ALLOW,
                    rec.channel, rec.uniqueid),
            self._clock())

    async def start(self) -> None:
        """Connect in the background and return at once."""
        if self.metrics is not None:
            self.metrics.ami_connected(False)
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="ami-watcher")

    async def close(self) -> None:
        self._closing = True
        manager = self._manager
        if manager is not None and self.connected:
            # A polite Logoff spares the operator a "connection lost" line in Asterisk's log.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(manager.send_action({"Action": "Logoff"})),
                                       min(1.0, self.config.ping_timeout))
        await cancel(self._task)
        self._task = None
        for t in list(self._actions):
            t.cancel()
        if self._actions:
            await asyncio.gather(*self._actions, return_exceptions=True)
        self._set_connected(False)

    def status(self) -> dict[str, Any]:
        """For the supervisor page and /healthz."""
        return {
            "connected": self.connected,
            "address": f"{self.config.host}:{self.config.port}",
            "last_event_at": self.last_event_at,
            "reconnects": self.reconnects,
            "confirmed": self.tracker.stats["confirmed"],
            "bypasses": self.tracker.stats["bypasses"],
            "hangup_bypass": self.config.hangup_bypass,
        }

    # -- the connection --------------------------------------------------------------------------

    def _set_connected(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            if self.metrics is not None:
                self.metrics.ami_connected(up)

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            self._answered_ping = False
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, AmiError) as e:
                err = str(e) or type(e).__name__
            except Exception as e:  # a bug must not end the watcher for good
                log.exception("AMI watcher: unexpected error")
                err = repr(e)
            else:
                err = "connection closed"
            finally:
                self._manager = None
                self._set_connected(False)
            if self._closing:
                return
            # A connection that answered a Ping resets the backoff; one that flaps or goes silent does not.
            if self._answered_ping:
                attempt = 0
            wait = backoff.delay(attempt, self.config.reconnect_max, random.random())
            (log.warning if attempt == 0 else log.info)(
                "AMI %s:%d: %s; reconnecting in %.1fs", self.config.host, self.config.port, err, wait)
            attempt += 1
            self.reconnects += 1
            await asyncio.sleep(wait)

    async def _session(self) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        lost = asyncio.Event()
        # Hangups were missed while we were away: forget channels rather than keep dead ones. (Before
        # connecting: events can come in the same read as the Login response.)
        self.tracker.reset_channels()
        manager = _Manager(lambda exc: lost.set(), host=c.host, port=c.port, username=c.username,
                           secret=c.secret, events=EVENT_CLASSES, loop=loop)
        manager.register_event("*", self._on_event)
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(manager.config["protocol_factory"], c.host, c.port), c.ping_timeout)
        self._manager = manager
        try:
            connected: asyncio.Future[tuple[Any, Any]] = loop.create_future()
            connected.set_result((transport, protocol))
            manager.connection_made(connected)  # installs the protocol and sends Login
            resp = await _answer(manager.authenticated_future, lost, c.ping_timeout, "Login")
            if not resp.success:
                raise AmiError(f"login refused: {resp.message or resp.response}")
            self._set_connected(True)
            log.info("AMI connected to %s:%d (Asterisk Call Manager/%s)", c.host, c.port,
                     getattr(protocol, "version", None) or "?")
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), c.ping_interval)
                if lost.is_set():
                    raise AmiError("connection closed by Asterisk")
                await _answer(manager.send_action({"Action": "Ping"}), lost, c.ping_timeout, "Ping")
                self._answered_ping = True
        finally:
            manager.close()

    # -- events ------------------------------------------------------------------------------------

    def _on_event(self, manager: Any, message: Any) -> None:
        # Called from panoramisk's data_received: an exception here would kill the connection.
        try:
            self.last_event_at = self._wall()
            effect = self.tracker.event(message, self._clock())
            if isinstance(effect, Confirmed):
                if self.metrics is not None:
                    self.metrics.attempt_confirmed()
                log.debug("attempt confirmed: decision %s, %s, campaign %s", effect.decision_id, effect.masked,
                          effect.campaign)
            elif isinstance(effect, Bypass):
                self._bypass(manager, effect)
        except Exception:
            log.exception("AMI watcher: cannot handle event %s", message.get("Event", "?"))

    def _bypass(self, manager: Any, b: Bypass) -> None:
        # Not ``self.connected``: events can come in the same read as the Login response, before the
        # session task resumes; an event at all proves the login was accepted.
        current = self._manager
        hangup = (self.config.hangup_bypass and current is not None and manager is current
                  and not getattr(current.protocol, "closed", True))
        channel = mask_channel(b.channel or "-")
        dest = mask_channel(b.dest_channel or "-")
        log.warning("BYPASS (%s): call to %s reached %s from %s (uniqueid %s) %s%s", b.kind, b.masked, dest,
                    channel, b.uniqueid or "-",
                    f"despite BLOCK decision {b.decision_id} (campaign {b.campaign})" if b.decision_id
                    else "with no gateway decision", "; hanging it up" if hangup else "")
        if self.metrics is not None:
            self.metrics.bypass(b.campaign)
        self.recent_bypasses.append(BypassRecord(self._wall(), b.kind, b.masked, channel, dest, b.campaign,
                                                 b.decision_id, hangup))
        if hangup:
            task = asyncio.ensure_future(self._hangup(manager, b))
            self._actions.add(task)
            task.add_done_callback(self._actions.discard)

    async def _hangup(self, manager: Any, b: Bypass) -> None:
        target = b.hangup_channel
        fut = manager.send_action({"Action": "Hangup", "Channel": target, "Cause": HANGUP_CAUSE})
        try:
            resp = await asyncio.wait_for(asyncio.shield(fut), self.config.ping_timeout)
        except TimeoutError:
            log.warning("bypass hangup of %s: no answer (not re-sent)", mask_channel(target))
            return
        if resp.success:
            log.info("bypass hangup of %s: done", mask_channel(target))
        else:
            log.warning("bypass hangup of %s: %s", mask_channel(target), resp.message or resp.response)
