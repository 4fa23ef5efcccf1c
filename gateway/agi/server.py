"""The FastAGI listener: a thin asyncio adapter around :mod:`gateway.agi.protocol`.

Why not panoramisk's ``fast_agi.Application`` (1.4): a client that closes before
the blank line makes its read loop spin on ``b""`` and freeze the event loop;
it has no timeouts; a script with a query string finds no route; an inline
``HANGUP`` is taken as the reply to the command in flight, shifting every later
reply by one. tests/agi/test_panoramisk_regressions.py shows each case.

One ``asyncio.Protocol`` per connection and no task until the environment
block is complete: a slow or silent client costs a timer, not a coroutine.

Failure modes, all of which leave Asterisk failing closed in the dialplan:

- peer not in ``[agi] allow``: closed at once, nothing said;
- more than ``max_sessions`` connections: the gateway writes ``FAILURE`` and
  closes. res_agi.c treats a line starting with "failure" as the script's
  failure, so ``AGISTATUS`` becomes ``FAILURE`` in microseconds instead of after
  a timeout, and the dialplan tries the next gateway, then refuses the call;
- an internal error while deciding: the same ``FAILURE`` line;
- no complete environment block or reply within ``read_timeout``, or a block
  over ``header_limit``, or bytes that are not FastAGI: closed without a verdict
  (``DNC_VERDICT`` stays empty, which the dialplan treats as no answer).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Iterable
from typing import Any, cast

from gateway.agi.protocol import (
    NEED_DATA,
    AgiConnection,
    AgiRequest,
    Closed,
    Hangup,
    ProtocolError,
    Reply,
    get_variable,
    set_variable,
)
from gateway.agi.routes import route_for, unknown
from gateway.config import AgiSection
from gateway.service import Gateway

log = logging.getLogger(__name__)

FAILURE = b"FAILURE\n"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SessionError(Exception):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


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
    """One FastAGI connection; also the :class:`gateway.agi.routes.Channel` a route talks to."""

    __slots__ = ("_deadline", "_request", "_timer", "_waiter", "conn", "hangup", "lost", "server", "started", "task",
                 "timed_out", "transport")

    def __init__(self, server: AgiServer) -> None:
        self.server = server
        self.conn = AgiConnection(server.config.header_limit)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._request: AgiRequest | None = None
        self.lost = False
        self.hangup = False
        self.timed_out = False
        self.started = 0.0
        self._deadline = 0.0

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
        self.transport.write(FAILURE)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self.server.loop.call_later(self.server.config.read_timeout, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        if self.lost:
            return  # refused connection: discard what Asterisk still sends
        self.conn.receive_data(data)
        self._wake()

    def eof_received(self) -> bool | None:
        if self.lost:
            if self.transport is not None:
                self.transport.close()
            return None
        self.conn.receive_data(b"")
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        was_session = self in self.server.sessions
        self.lost = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if was_session and self.task is None:
            # Never got a complete env block: the session ends here.
            self._finish(False)

    # -- reading ------------------------------------------------------------------------------------------------
    def _wake(self) -> None:
        if self.task is not None:
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)
            return
        try:
            ev = self.conn.next_event()
        except ProtocolError as e:
            self._abort(str(e), e.kind)
            return
        if ev is NEED_DATA:
            return
        assert isinstance(ev, AgiRequest)
        self._deadline = 0.0  # no read pending until the first command
        self._request = ev
        self.task = self.server.loop.create_task(self._run(ev))

    def _on_timer(self) -> None:
        self._timer = None
        if self.lost:
            return
        loop = self.server.loop
        if self.task is None:
            self._abort(f"no complete environment block within {self.server.config.read_timeout:g}s "
                        f"({self.conn.buffered} bytes received)", "timeout")
            return
        if self._deadline and loop.time() >= self._deadline:
            self.timed_out = True
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)
            return
        # A reply came in time since the timer was armed: wait for the current read's deadline instead.
        self._timer = loop.call_at(self._deadline or loop.time() + self.server.config.read_timeout, self._on_timer)

    def _abort(self, message: str, kind: str) -> None:
        if self.lost:
            return
        # A connection closed without a byte is a port probe (monitoring, a load balancer): not worth a warning.
        level = logging.DEBUG if kind == "eof" and self.conn.buffered == 0 else logging.WARNING
        log.log(level, "FastAGI: %s: %s", self._peer(), message)
        self.server.error(kind)
        self.lost = True
        if self.transport is not None:
            self.transport.abort()
        # connection_lost follows and ends the session

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"

    async def _reply(self) -> Reply:
        while True:
            try:
                ev = self.conn.next_event()
            except ProtocolError as e:
                raise SessionError(str(e), e.kind) from None
            if ev.__class__ is Reply:
                self._deadline = 0.0
                return ev  # type: ignore[return-value]
            if isinstance(ev, Hangup):
                if not self.hangup:
                    self.hangup = True
                    self.server.error("hangup")
                continue
            if isinstance(ev, Closed):
                raise SessionError("Asterisk closed the connection before replying", "hangup")
            if self.lost:
                raise SessionError("connection lost before the reply", "hangup")
            if self.timed_out:
                raise SessionError(f"no reply within {self.server.config.read_timeout:g}s", "timeout")
            waiter = self._waiter = self.server.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    # -- Channel (what routes use) ----------------------------------------------------------------------------
    @property
    def request(self) -> AgiRequest:
        assert self._request is not None
        return self._request

    async def command(self, line: str) -> Reply:
        if self.lost or self.transport is None:
            raise SessionError("connection lost", "hangup")
        self.transport.write(self.conn.send(line))
        self._deadline = self.server.loop.time() + self.server.config.read_timeout
        if self._timer is None:
            self._timer = self.server.loop.call_at(self._deadline, self._on_timer)
        return await self._reply()

    async def set(self, name: str, value: str) -> None:
        await self.command(set_variable(name, value))

    async def get(self, name: str) -> str | None:
        reply = await self.command(get_variable(name))
        return reply.data if reply.ok and reply.result == "1" else None

    # -- the session ----------------------------------------------------------------------------------------
    async def _run(self, req: AgiRequest) -> None:
        ok = False
        route = route_for(req.script)
        try:
            if route is None:
                self.server.error("unknown_route")
                log.error("FastAGI: unknown route %r from %s (refusing the call; expected check, refusal, optout)",
                          req.script, req.channel or self._peer())
                await unknown(self, self.server.gateway)
            else:
                await route(self, self.server.gateway)
            ok = route is not None
        except SessionError as e:
            self.server.error(e.kind)
            log.warning("FastAGI %s %s: %s", req.script, req.channel or self._peer(), e)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.server.error("internal")
            log.exception("FastAGI %s %s: internal error, answering FAILURE", req.script, req.channel)
            if not self.lost and self.transport is not None:
                self.transport.write(FAILURE)
        finally:
            if self.transport is not None:
                self.transport.close()
            self._finish(ok)

    def _finish(self, ok: bool) -> None:
        srv = self.server
        if self in srv.sessions:
            srv.sessions.discard(self)
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
            lambda: _Session(self), host if host not in ("", "0.0.0.0") else None, self.config.listen.port,
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
        for s in list(self.sessions):
            if s.task is not None:
                s.task.cancel()
            if s.transport is not None:
                s.transport.abort()
        tasks = [s.task for s in self.sessions if s.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
