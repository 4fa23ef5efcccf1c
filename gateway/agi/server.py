"""The FastAGI listener: a thin asyncio adapter around :mod:`gateway.agi.session` (one call's script and
deadlines, sans-I/O) and, through it, :mod:`gateway.agi.protocol`. What stays here is the transport: sockets,
the one timer of each connection, the ``[agi] allow`` list, the session cap and the drain.

Why not panoramisk's ``fast_agi.Application`` (1.4): a client that closes before
the blank line makes its read loop spin on ``b""`` and freeze the event loop;
it has no timeouts; a script with a query string finds no route; an inline
``HANGUP`` is taken as the reply to the command in flight, shifting every later
reply by one. tests/agi/test_panoramisk_regressions.py shows each case.

One ``asyncio.Protocol`` per connection, driven by callbacks: the replies to
``GET VARIABLE`` and the answer (``EXEC MSet`` or ``SET VARIABLE``) are handled in ``data_received`` and the
next command written at once, with no coroutine resumed for each reply. The
route returns a value this adapter drives: the variables when the Gateway
call needed no waiting (embedded state, no durable audit record): then a
session creates no task at all. A :class:`~gateway.callcheck.CallCheck`
still waiting only for its durable audit record creates none either: the
Gateway has the audit log's wake-up of the record's commit group call the
session back, which writes the answer (``_checked``). Only a remote state
store (or a route that is a coroutine: refusal, opt-out, consent) costs a task.
A slow or silent client costs a timer, not a coroutine.

Failure modes, all of which leave Asterisk failing closed in the dialplan:

- peer not in ``[agi] allow``: closed at once, nothing said;
- more than ``max_sessions`` connections: the gateway writes ``FAILURE`` and
  half-closes (a full close with the env block unread would reset the
  connection and could lose the line). res_agi.c treats a line starting with "failure" as the script's
  failure, so ``AGISTATUS`` becomes ``FAILURE`` in microseconds instead of after
  a timeout, and the dialplan tries the next gateway, then refuses the call;
- an internal error while deciding: the same ``FAILURE`` line;
- no complete environment block or reply within ``read_timeout``, or a block
  over ``header_limit``, or bytes that are not FastAGI: closed without a verdict
  (``DNC_VERDICT`` stays empty, which the dialplan treats as no answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from gateway.agi.protocol import Sets
from gateway.agi.routes import ROUTES, UNKNOWN, Handler, handler_for
from gateway.agi.session import (
    _ABORT,
    _CLOSE,
    _DECIDE,
    _FAIL,
    _SEND,
    _WAIT,
    FAILURE,
    Cut,
    ErrorKind,
    Session,
    Step,
    answer_commands,
)
from gateway.aio import listen_error
from gateway.callcheck import CallCheck, Outcome
from gateway.config import AgiSection
from gateway.numbers import mask_digits
from gateway.service import Gateway

__all__ = ["FAILURE", "AgiServer", "PeerFilter", "answer_commands"]

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DIGITS = re.compile(r"\d{5,}")


def _redact(text: str) -> str:
    """Mask digit runs long enough to be phone numbers: a bad line quoted in a log may hold one."""
    return _DIGITS.sub(lambda m: "*" * (len(m.group()) - 2) + m.group()[-2:], text)


class PeerFilter:
    """``[agi] allow`` as a membership test, cached per address (a PBX connects from a handful of them)."""

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        self.networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    def allows(self, host: str) -> bool:
        hit = self._cache.get(host)
        if hit is not None:
            return hit
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        ok = any(ip in net for net in self.networks)
        if len(self._cache) < 4096:
            self._cache[host] = ok
        return ok


# Enum members read through their class cost about 50 ns each (CPython 3.11): the per-call path reads the
# session's module constants (_ABORT, _SEND, …, imported above) and these.
_EOF = ErrorKind.EOF
_TIMEOUT = ErrorKind.TIMEOUT
IDLE_LOG_EVERY = 60.0  # seconds between two log lines about idle connections cut
_HANGUP = ErrorKind.HANGUP


class _Connection(asyncio.Protocol):
    """One FastAGI connection: socket events into its :class:`Session`, and each :class:`Step` it returns done."""

    __slots__ = ("lost", "peer", "server", "session", "started", "task", "timer", "transport", "waiting")

    def __init__(self, server: AgiServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.waiting = False  # the route answers through a callback (:meth:`_answered`): a durable audit record
        self.timer: asyncio.TimerHandle | None = None
        self.lost = False  # refused or cut: what Asterisk still sends is discarded
        self.started = 0.0
        self.peer = ""  # the peer's address while it counts against [agi] max_sessions_per_peer

    # -- asyncio.Protocol -------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCPTransport does not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.started = time.perf_counter()
        srv = self.server
        self.session: Session[Handler] = Session(srv.config, srv.clock(), handler_for)
        peer = self.transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else ""
        if not srv.peers.allows(host):
            srv.error(ErrorKind.NOT_ALLOWED)
            log.warning("FastAGI: connection from %s refused (not in [agi] allow)", host or "?")
            self.lost = True
            self.transport.abort()
            return
        per_peer = srv.per_peer.get(host, 0)
        if len(srv.sessions) >= srv.config.max_sessions or srv.draining or per_peer >= srv.peer_cap:
            srv.error(ErrorKind.OVERLOAD)
            if srv.overloaded_since == 0.0:
                if per_peer >= srv.peer_cap:
                    log.warning("FastAGI: %d sessions in flight from %s (max_sessions_per_peer): answering FAILURE",
                                per_peer, host or "?")
                else:
                    log.warning("FastAGI: %d sessions in flight (max_sessions): answering FAILURE",
                                len(srv.sessions))
                srv.overloaded_since = self.started
            self._do(self.session.refuse(srv.clock()))
            return
        srv.overloaded_since = 0.0
        srv.sessions.add(self)
        self.peer = host
        srv.per_peer[host] = per_peer + 1
        if srv.metrics is not None:
            srv.metrics.agi_session_started()
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.lost:
            return
        self._do(self.session.receive_data(data, self.server.clock()))

    def eof_received(self) -> bool | None:
        if self.lost:
            if self.transport is not None:
                self.transport.close()
            return None
        self._do(self.session.receive_eof(self.server.clock()))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.lost = True
        self.server.refused.discard(self)
        if self.task is None and not self.waiting:  # else the session ends when the Gateway call returns
            self._finish()

    # -- the session's steps --------------------------------------------------------------------------------------
    def _do(self, step: Step) -> None:
        transport = self.transport
        assert transport is not None
        if step is _SEND:
            transport.write(self.session.outgoing)
            if self.timer is None:  # one timer, re-armed only when it fires early: cheaper than one per read
                self._arm()
        elif step is _WAIT:
            return
        elif step is _DECIDE:
            self._decide()
        elif step is _CLOSE:
            transport.close()  # connection_lost ends the session
        elif step is _ABORT:
            self._abort()
        elif step is _FAIL:
            transport.write(self.session.outgoing)
            transport.close()
        else:  # _REFUSE: not a session; Asterisk closes on FAILURE, or the timer cuts the connection
            self.lost = True
            self.server.refused.add(self)
            transport.write(self.session.outgoing)
            if transport.can_write_eof():
                transport.write_eof()
            self._arm()

    def _decide(self) -> None:
        s = self.session
        srv = self.server
        req = s.request
        handler = s.handler
        assert req is not None and handler is not None
        if handler is UNKNOWN:
            srv.error(ErrorKind.UNKNOWN_ROUTE)
            log.error("FastAGI: unknown route %r from %s (refusing the call; expected %s)",
                      mask_digits(req.script), mask_digits(req.channel) or self._peer(), ", ".join(ROUTES))
        gateway = srv.gateway
        try:
            res = handler.run(req, s.values, gateway)
            if isinstance(res, tuple):
                self._do(s.answer(res, srv.clock()))
                return
            if res.__class__ is CallCheck:
                check = res
                # A durable audit record only: the audit log's wake-up of its group calls _checked, no task.
                if gateway.finish_then(check, self._checked):
                    self.waiting = True
                    return
                pending: Awaitable[Outcome | Sets] = gateway.finish(check)
            else:
                pending = cast(Awaitable[Sets], res)
        except Exception:
            self._internal_error()
            return
        # The Gateway has to wait (remote state), or the route is a coroutine: the one task of this session.
        self.task = srv.loop.create_task(self._decide_later(pending))

    def _checked(self, outcome: Outcome) -> None:
        """The check's Outcome, called back once the decision's audit record is durable (or known lost)."""
        if not self.waiting:  # the drain gave up on this session already
            return
        self.waiting = False
        if self.lost:
            self._finish()
            return
        try:
            handler = self.session.handler
            assert handler is not None
            step = self.session.answer(handler.sets(outcome), self.server.clock())
        except Exception:
            self._internal_error()
            return
        self._do(step)

    async def _decide_later(self, pending: Awaitable[Outcome | Sets]) -> None:
        """The rest of the Gateway call; the answer's first command is written from this task's last step."""
        try:
            res = await pending
            handler = self.session.handler
            assert handler is not None
            sets = handler.sets(res) if res.__class__ is Outcome else cast(Sets, res)
        except asyncio.CancelledError:  # drain gave up on this session
            self.task = None
            self._finish()
            raise
        except Exception:
            self.task = None
            self._internal_error()
            return
        self.task = None
        if self.lost:
            self._finish()
            return
        self._do(self.session.answer(sets, self.server.clock()))

    def _internal_error(self) -> None:
        self.server.error(ErrorKind.INTERNAL)
        req = self.session.request
        log.exception("FastAGI %s %s: internal error, answering FAILURE", mask_digits(req.script) if req else "-",
                      mask_digits(req.channel) if req else "")
        if self.lost:
            self._finish()
        else:
            self._do(self.session.fail())

    def _arm(self) -> None:
        at = self.session.get_timer()
        if at is not None:
            self.timer = self.server.loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        step = self.session.handle_timer(self.server.clock())
        if step is _ABORT:
            self._abort()
        else:  # fired before the deadline (a reply came meanwhile and a later command was sent)
            self._arm()

    def drain(self, deadline: float) -> None:
        """Have the session cut at ``deadline`` if still open (the drain's end)."""
        self.session.drain(deadline)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._arm()

    def _abort(self) -> None:
        s = self.session
        cut = s.cut
        assert cut is not None
        if cut.kind is not None:
            self._log_cut(cut)
            self.server.error(cut.kind)
        elif self in self.server.sessions:  # cut by the drain's deadline (a refused connection is no session)
            self.server.cut_by_drain.add(self)
        self.lost = True
        if self.transport is not None:
            self.transport.abort()
        # connection_lost follows and ends the session

    def _log_cut(self, cut: Cut) -> None:
        # A connection closed without a byte is a port probe (monitoring, a load balancer): not worth a warning.
        s = self.session
        level = logging.DEBUG if cut.kind is _EOF and s.conn.buffered == 0 else logging.WARNING
        req = s.request
        if cut.kind is _TIMEOUT and req is None:
            # An idle connection (no request in time): counted in dnc_agi_errors_total{kind="timeout"}; logged
            # once a minute at most, with how many, so that a flood of them does not flood the log.
            srv = self.server
            srv.idle_cut += 1
            now = srv.clock()
            if now - srv.idle_logged_at < IDLE_LOG_EVERY:
                return
            log.warning("FastAGI: %d idle connection(s) cut (no request within read_timeout) since the last such "
                        "line; counted in dnc_agi_errors_total{kind=\"timeout\"}", srv.idle_cut)
            srv.idle_cut, srv.idle_logged_at = 0, now
            return
        # A channel name holds the number dialled (Local/0612345678@ctx): masked like a number.
        log.log(level, "FastAGI %s %s: %s", mask_digits(req.script) if req else "-",
                (mask_digits(req.channel) if req else "") or self._peer(),
                _redact(cut.message))

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"

    def _finish(self) -> None:
        srv = self.server
        if self in srv.sessions:
            srv.sessions.discard(self)
            left = srv.per_peer.get(self.peer, 1) - 1
            if left > 0:
                srv.per_peer[self.peer] = left
            else:
                srv.per_peer.pop(self.peer, None)
            s = self.session
            if s.hangup:
                srv.error(_HANGUP)
            ok = s.ok and s.handler is not UNKNOWN
            if srv.metrics is not None:
                srv.metrics.agi_session_finished(time.perf_counter() - self.started, ok)
            if srv.draining and not srv.sessions:
                srv.idle.set()


class AgiServer:
    """FastAGI server bound to ``config.listen`` (port 0: any free port)."""

    def __init__(self, gateway: Gateway, config: AgiSection, metrics: Any = None) -> None:
        self.gateway = gateway
        self.config = config
        self.metrics = metrics
        self.peers = PeerFilter(config.allow)
        self.sessions: set[_Connection] = set()
        self.refused: set[_Connection] = set()  # answered FAILURE, waiting for Asterisk to close
        self.draining = False
        self.overloaded_since = 0.0
        self.per_peer: dict[str, int] = {}  # sessions in flight by peer address ([agi] max_sessions_per_peer)
        self.peer_cap = config.max_sessions_per_peer or config.max_sessions
        self.idle_cut = 0  # idle connections cut since the last log line about them
        self.idle_logged_at = -IDLE_LOG_EVERY
        self.cut_by_drain: set[_Connection] = set()  # sessions the drain's deadline ended
        self.idle = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.clock: Callable[[], float] = time.monotonic  # the loop's clock once started: the sessions' now

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.agi_error(kind)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.clock = self._loop.time
        host = self.config.listen.host
        try:
            self._server = await self._loop.create_server(
                lambda: _Connection(self), host or None, self.config.listen.port,
                backlog=max(128, min(self.config.max_sessions, 4096)), reuse_address=True)
        except OSError as e:
            raise listen_error("FastAGI", "[agi] listen", str(self.config.listen), e) from None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def drain_and_close(self, timeout: float) -> None:  # noqa: ASYNC109 (app.py's interface)
        """Stop accepting, let sessions in flight finish (up to ``timeout``), then cut the rest."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        if self.sessions:
            deadline = self.loop.time() + timeout
            for c in self.sessions:
                c.drain(deadline)  # each session is cut at the deadline, whatever its phase
            self.idle.clear()
            # The sessions' own timers cut them at the deadline; this one only bounds the wait if one misses it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), timeout)
            left = len(self.sessions | self.cut_by_drain)
            if left:
                log.warning("FastAGI: %d sessions still open after %.1fs, closing them", left, timeout)
        tasks = [s.task for s in self.sessions if s.task is not None]
        for s in [*self.sessions, *self.refused]:
            if s.task is not None:
                s.task.cancel()
            elif s.waiting:  # as a cancelled task would: the session ends now, its answer is never written
                s.waiting = False
                s.lost = True
                s._finish()
            if s.transport is not None:
                s.transport.abort()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
