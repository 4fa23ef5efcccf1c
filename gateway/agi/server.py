"""The FastAGI listener: a thin asyncio adapter around :mod:`gateway.agi.protocol`.

Why not panoramisk's ``fast_agi.Application`` (1.4): a client that closes before
the blank line makes its read loop spin on ``b""`` and freeze the event loop;
it has no timeouts; a script with a query string finds no route; an inline
``HANGUP`` is taken as the reply to the command in flight, shifting every later
reply by one. tests/agi/test_panoramisk_regressions.py shows each case.

One ``asyncio.Protocol`` per connection, driven by callbacks: the replies to
``GET VARIABLE`` and the answer (``EXEC MSet`` or ``SET VARIABLE``) are handled in ``data_received`` and the
next command written at once, with no coroutine resumed for each reply. The
Gateway call runs in the same callback when it needs no waiting (embedded
state, no durable audit record): then a session creates no task at all, and
otherwise one, for that call. A slow or silent client costs a timer, not a
coroutine.

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
import enum
import ipaddress
import logging
import re
import time
from collections.abc import Coroutine, Iterable
from typing import Any, cast

from gateway.agi.protocol import (
    NEED_DATA,
    AgiConnection,
    AgiRequest,
    Closed,
    Hangup,
    ProtocolError,
    Reply,
    encode_command,
    get_variable,
    mset,
    set_variable,
)
from gateway.agi.routes import UNKNOWN, Handler, Sets, route_for
from gateway.config import AgiSection
from gateway.service import Gateway

log = logging.getLogger(__name__)

FAILURE = b"FAILURE\n"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DIGITS = re.compile(r"\d{5,}")


def _redact(text: str) -> str:
    """Mask digit runs long enough to be phone numbers: a bad line quoted in a log may hold one."""
    return _DIGITS.sub(lambda m: "*" * (len(m.group()) - 2) + m.group()[-2:], text)


def answer_commands(sets: Sets, answer: str) -> list[bytes]:
    """The commands that set ``sets``, encoded: one ``EXEC MSet`` (``answer = "mset"``) or a SET VARIABLE each.

    Values MSet cannot carry (a comma, a quote, white space) fall back to SET VARIABLEs.
    """
    if answer == "mset" and len(sets) > 1:
        # One round trip for all the variables; res_agi.c runs EXEC on a dead channel too, as it does SET VARIABLE.
        command = mset(sets)
        if command is not None:
            return [encode_command(command)]
    return [encode_command(set_variable(name, value)) for name, value in sets]


class Phase(enum.Enum):
    ENV = "env"  # reading the environment block
    READ = "read"  # GET VARIABLE round trips
    DECIDE = "decide"  # the Gateway call is running (only seen while it awaits something)
    SET = "set"  # the answer's round trips: one EXEC MSet, or a SET VARIABLE each
    DONE = "done"


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


class _Session(asyncio.Protocol):
    """One FastAGI connection: env block -> GET VARIABLEs -> Gateway call -> the answer (MSet or SETs) -> close."""

    __slots__ = ("_commands", "_deadline", "_handler", "_reads", "_request", "_sent", "_timer", "_values", "conn",
                 "hangup", "lost", "ok", "phase", "server", "started", "task", "transport")

    def __init__(self, server: AgiServer) -> None:
        self.server = server
        self.conn = AgiConnection(server.config.header_limit)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.phase = Phase.ENV
        self.lost = False
        self.hangup = False
        self.ok = False
        self.started = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._request: AgiRequest | None = None
        self._handler: Handler = UNKNOWN
        self._reads: tuple[str, ...] = ()
        self._values: dict[str, str | None] = {}
        self._commands: list[bytes] = []  # the answer, encoded: SET VARIABLEs or one EXEC MSet
        self._sent = 0

    # -- asyncio.Protocol -------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCPTransport does not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.started = time.perf_counter()
        srv = self.server
        peer = self.transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else ""
        if not srv.peers.allows(host):
            srv.error("not_allowed")
            log.warning("FastAGI: connection from %s refused (not in [agi] allow)", host or "?")
            self.lost = True
            self.transport.abort()
            return
        if len(srv.sessions) >= srv.config.max_sessions or srv.draining:
            srv.error("overload")
            if srv.overloaded_since == 0.0:
                log.warning("FastAGI: %d sessions in flight (max_sessions): answering FAILURE",
                            len(srv.sessions))
                srv.overloaded_since = self.started
            self._refuse()
            return
        srv.overloaded_since = 0.0
        srv.sessions.add(self)
        if srv.metrics is not None:
            srv.metrics.agi_session_started()
        # One timer per session, re-armed only when it fires early: cheaper than one per read.
        self._deadline = srv.loop.time() + srv.config.read_timeout
        self._timer = srv.loop.call_at(self._deadline, self._on_timer)

    def _refuse(self) -> None:
        """Answer ``FAILURE`` and half-close; closing with the env block unread would send a RST instead."""
        assert self.transport is not None
        self.lost = True  # not a session: data is ignored from now on
        self.server.refused.add(self)
        self.transport.write(FAILURE)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self.server.loop.call_later(self.server.config.read_timeout, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        if self.lost:
            return  # refused or cut: discard what Asterisk still sends
        if self.phase is Phase.SET and self.conn.receive_common(data) is not None:  # the usual reply, one read
            self._deadline = 0.0
            self._sent += 1
            self._set_next()
            return
        self.conn.receive_data(data)
        self._pump()

    def eof_received(self) -> bool | None:
        if self.lost:
            if self.transport is not None:
                self.transport.close()
            return None
        self.conn.receive_data(b"")
        self._pump()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.lost = True
        self.server.refused.discard(self)
        if self.task is None:  # else the session ends when the Gateway call returns
            self._finish()

    # -- events -------------------------------------------------------------------------------------------------
    def _pump(self) -> None:
        conn = self.conn
        while not self.lost:
            try:
                ev = conn.next_event()
            except ProtocolError as e:
                self._abort(str(e), e.kind)
                return
            if ev is NEED_DATA:
                return
            cls = ev.__class__
            if cls is Reply:
                self._on_reply(cast(Reply, ev))
            elif cls is AgiRequest:
                self._on_request(cast(AgiRequest, ev))
            elif cls is Hangup:
                # The channel is gone; SET VARIABLE still works in dead mode, so the session carries on.
                if not self.hangup:
                    self.hangup = True
                    self.server.error("hangup")
            elif cls is Closed:
                if self.phase is not Phase.DONE:  # after our last command, Asterisk's close is the normal end
                    self._abort(f"Asterisk closed the connection ({self.phase.value})", "hangup")
                return

    def _on_request(self, req: AgiRequest) -> None:
        self._request = req
        self._deadline = 0.0  # no read pending
        handler = route_for(req.script)
        if handler is None:
            self.server.error("unknown_route")
            log.error("FastAGI: unknown route %r from %s (refusing the call; expected check, refusal, optout)",
                      req.script, req.channel or self._peer())
            handler = UNKNOWN
        self._handler = handler
        self._reads = handler.reads(req)
        self._read_next_or_decide()

    def _read_next_or_decide(self) -> None:
        i = len(self._values)
        if i < len(self._reads):
            self.phase = Phase.READ
            self._send(get_variable(self._reads[i]))
            return
        self.phase = Phase.DECIDE
        req = self._request
        assert req is not None
        try:
            res = self._handler.run(req, self._values, self.server.gateway)
        except Exception:
            self._internal_error(req)
            return
        if isinstance(res, tuple):
            self._answer(res)
        else:  # the Gateway has to wait (remote state, durable audit): the one task of this session
            self.task = self.server.loop.create_task(self._decide(res))

    async def _decide(self, pending: Coroutine[Any, Any, Sets]) -> None:
        """The rest of the Gateway call; the answer's first command is written from this task's last step."""
        try:
            sets = await pending
        except asyncio.CancelledError:  # drain gave up on this session
            self.task = None
            self._finish()
            raise
        except Exception:
            self.task = None
            assert self._request is not None
            self._internal_error(self._request)
            return
        self.task = None
        if self.lost:
            self._finish()
            return
        self._answer(sets)

    def _internal_error(self, req: AgiRequest) -> None:
        self.server.error("internal")
        log.exception("FastAGI %s %s: internal error, answering FAILURE", req.script, req.channel)
        if self.lost:
            self._finish()
        elif self.transport is not None:
            self.transport.write(FAILURE)
            self.transport.close()  # connection_lost ends the session

    def _answer(self, sets: Sets) -> None:
        self._commands = answer_commands(sets, self.server.config.answer)
        self.phase = Phase.SET
        self._set_next()

    def _set_next(self) -> None:
        i = self._sent
        if i < len(self._commands):
            self._send_encoded(self._commands[i])
            return
        self.phase = Phase.DONE
        self.ok = True
        assert self.transport is not None
        self.transport.close()

    def _on_reply(self, reply: Reply) -> None:
        self._deadline = 0.0
        if self.phase is Phase.READ:
            self._values[self._reads[len(self._values)]] = reply.data if reply.code == 200 and reply.result == "1" \
                else None
            self._read_next_or_decide()
        elif self.phase is Phase.SET:
            self._sent += 1
            self._set_next()

    def _send(self, line: str) -> None:
        self._send_encoded(encode_command(line))

    def _send_encoded(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(self.conn.send_encoded(data))
        loop = self.server.loop
        self._deadline = loop.time() + self.server.config.read_timeout
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.lost:
            return
        loop = self.server.loop
        timeout = self.server.config.read_timeout
        if self.phase is Phase.ENV:
            self._abort(f"no complete environment block within {timeout:g}s ({self.conn.buffered} bytes received)",
                        "timeout")
            return
        if self._deadline and loop.time() >= self._deadline:
            self._abort(f"no reply within {timeout:g}s ({self.phase.value})", "timeout")
            return
        # A reply came in time since the timer was armed: wait for the current read's deadline instead.
        self._timer = loop.call_at(self._deadline or loop.time() + timeout, self._on_timer)

    def _abort(self, message: str, kind: str) -> None:
        if self.lost:
            return
        # A connection closed without a byte is a port probe (monitoring, a load balancer): not worth a warning.
        level = logging.DEBUG if kind == "eof" and self.conn.buffered == 0 else logging.WARNING
        req = self._request
        log.log(level, "FastAGI %s %s: %s", req.script if req else "-", (req.channel if req else "") or self._peer(),
                _redact(message))
        self.server.error(kind)
        self.lost = True
        if self.transport is not None:
            self.transport.abort()
        # connection_lost follows and ends the session

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"

    def _finish(self) -> None:
        srv = self.server
        if self in srv.sessions:
            srv.sessions.discard(self)
            ok = self.ok and self._handler is not UNKNOWN
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
        self.sessions: set[_Session] = set()
        self.refused: set[_Session] = set()  # answered FAILURE, waiting for Asterisk to close
        self.draining = False
        self.overloaded_since = 0.0
        self.idle = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.agi_error(kind)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        host = self.config.listen.host
        self._server = await self._loop.create_server(
            lambda: _Session(self), host or None, self.config.listen.port,
            backlog=max(128, min(self.config.max_sessions, 4096)), reuse_address=True)

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
            self.idle.clear()
            try:
                await asyncio.wait_for(self.idle.wait(), timeout)
            except TimeoutError:
                log.warning("FastAGI: %d sessions still open after %.1fs, closing them", len(self.sessions), timeout)
        tasks = [s.task for s in self.sessions if s.task is not None]
        for s in [*self.sessions, *self.refused]:
            if s.task is not None:
                s.task.cancel()
            if s.transport is not None:
                s.transport.abort()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
