"""The SIP listener, UDP and TCP on ``[sip] listen``: a thin asyncio adapter around
:class:`gateway.sip.redirect.Redirector` (sans-I/O), deciding through ``Gateway.check_now`` (and
``finish_then`` or ``finish`` for a check that has to wait) exactly as
FastAGI's ``check`` route does: the same engine, attempt count, audit (an ALLOW answered only once its record
is durable), monitor mode and observers (metrics, live page), with ``source = "sip"`` in the audit trail.

What stays here is the transport: sockets, the ``[sip] allow`` list, the TCP connection cap and timeouts
(``read_timeout`` for the rest of a message once it started, ``idle_timeout`` between messages), the one
timer of the transaction table, and the drain (new INVITEs and OPTIONS answered 503, decisions in flight
finished, up to ``drain_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Coroutine, Hashable, Iterable
from typing import TYPE_CHECKING, Any, cast

from gateway.audit.record import Source as AuditSource
from gateway.callcheck import CallCheck
from gateway.config import SipCallerId, SipSection
from gateway.policy.decision import Reason, Verdict
from gateway.service import Gateway, Outcome
from gateway.sip.framing import PONG, FramingError, StreamFramer
from gateway.sip.metrics import SipMetrics
from gateway.sip.redirect import Answer, Decide, Decline, Dropped, Event, Redirect, Redirector, Send, Unavailable
from gateway.sip.transactions import Table

if TYPE_CHECKING:
    from gateway.metrics import Metrics

__all__ = ["SipServer", "answer_for"]

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
INTERNAL = "internal_error"
# A decision that could not be made rather than a refusal: answered 503, so the proxy tries its next gateway.
_UNAVAILABLE = frozenset({Reason.STATE_UNAVAILABLE, Reason.AUDIT_UNAVAILABLE})


def answer_for(number: str, outcome: Outcome) -> Answer:
    """The SIP answer of a decision: 302 for an ALLOW (monitor mode too), 603 for a BLOCK, 503 when the
    gateway could not decide (the call history or the audit unavailable)."""
    d = outcome.decision
    if d.verdict is Verdict.ALLOW:
        return Redirect(number, outcome.decision_id, d.would_block)
    reason = d.reason
    if reason in _UNAVAILABLE:
        return Unavailable(str(reason), outcome.decision_id)
    return Decline(str(reason) if reason is not None else "blocked", outcome.decision_id)


def _host(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class Sources:
    """``[sip] allow`` and ``[sip] campaigns`` as lookups, cached per address (a proxy sends from a handful).

    (FastAGI's PeerFilter does the first for ``[agi] allow``; the two listeners are independent layers.)"""

    def __init__(self, allow: Iterable[IPNetwork], campaigns: Iterable[tuple[IPNetwork, str]]) -> None:
        self.allow = tuple(allow)
        self.campaigns = tuple(campaigns)  # most specific first (config.py sorts them)
        self._cache: dict[str, tuple[bool, str]] = {}

    def lookup(self, host: str) -> tuple[bool, str]:
        """(allowed, default campaign or "")."""
        hit = self._cache.get(host)
        if hit is not None:
            return hit
        ip = _host(host)
        res = (False, "") if ip is None else (
            any(ip in net for net in self.allow),
            next((name for net, name in self.campaigns if ip in net), ""))
        if len(self._cache) < 4096:
            self._cache[host] = res
        return res


UDP_BUFFER = 4 << 20  # bytes: a burst of INVITEs waits in the kernel instead of being dropped (then retransmitted)


def _bigger_buffer(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # capped by net.core.rmem_max: best effort
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)


def _source(addr: Any) -> tuple[str, int]:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return str(addr[0]), int(addr[1])
    return "", 0


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: SipServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        source = _source(addr)
        if not data.strip():  # a CRLF keep-alive: nothing to answer over UDP
            return
        srv = self.server
        if not srv.sources.lookup(source[0])[0]:
            srv.dropped("not_allowed")
            return
        srv.handle(data, source, source, reliable=False)

    def error_received(self, exc: Exception) -> None:  # an ICMP error for an earlier answer: nothing to do
        log.debug("SIP/UDP: %s", exc)


class _Tcp(asyncio.Protocol):
    """One TCP connection: bytes into its framer, each whole message into the server's Redirector."""

    def __init__(self, server: SipServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.framer = StreamFramer(server.config.max_message)
        self.source = ("", 0)
        self.closed = False
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        srv = self.server
        self.source = _source(self.transport.get_extra_info("peername"))
        if not srv.sources.lookup(self.source[0])[0]:
            srv.dropped("not_allowed")
            log.warning("SIP/TCP: connection from %s refused (not in [sip] allow)", self.source[0] or "?")
            self.closed = True
            self.transport.abort()
            return
        if len(srv.connections) >= srv.config.max_connections or srv.draining:
            srv.dropped("overload")
            self.closed = True
            self.transport.abort()
            return
        srv.connections.add(self)
        self._wait(srv.config.idle_timeout)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        srv = self.server
        before = self.framer.buffered
        try:
            messages = self.framer.receive_data(data)
        except FramingError as e:
            srv.dropped("too_large")
            log.warning("SIP/TCP %s: %s: closing", self.source[0], e)
            self._abort()
            return
        assert self.transport is not None
        while self.framer.pongs:
            self.framer.pongs -= 1
            self.transport.write(PONG)
        for m in messages:
            srv.handle(m, self, self.source, reliable=True)
        if self.framer.buffered == 0:
            self._wait(srv.config.idle_timeout)
        elif before == 0 or messages:  # a new message started: it has read_timeout to arrive whole
            self._wait(srv.config.read_timeout)

    def eof_received(self) -> bool | None:
        return None  # close our side too: nothing more can be framed

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.server.connections.discard(self)

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def _wait(self, seconds: float) -> None:
        loop = self.server.loop
        self.deadline = loop.time() + seconds
        if self.timer is not None and self.timer.when() > self.deadline:  # sooner than the timer: move it
            self.timer.cancel()
            self.timer = None
        if self.timer is None:  # a later deadline keeps the timer, which re-arms itself when it fires early
            self.timer = loop.call_at(self.deadline, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.closed:
            return
        if self.server.loop.time() >= self.deadline:
            if self.framer.buffered:
                self.server.dropped("read_timeout")
                log.warning("SIP/TCP %s: no whole message within [sip] read_timeout: closing", self.source[0])
            self._abort()
        else:
            self.timer = self.server.loop.call_at(self.deadline, self._on_timer)

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class SipServer:
    """The SIP redirect server bound to ``config.listen`` (UDP and TCP on the same port; port 0: any free one)."""

    def __init__(self, gateway: Gateway, config: SipSection, metrics: Metrics | None = None) -> None:
        self.gateway = gateway
        self.config = config
        self.sources = Sources(config.allow, config.campaigns)
        self.core = Redirector(config.route, Table(config.max_transactions, config.decision_timeout),
                               limit=config.max_message)
        self.connections: set[_Tcp] = set()
        self.pending: set[Hashable] = set()  # INVITEs whose decision is in flight (keys)
        self.tasks: set[asyncio.Task[None]] = set()
        self.draining = False
        self.idle = asyncio.Event()
        self.metrics: SipMetrics | None = None
        if metrics is not None:
            self.metrics = SipMetrics(metrics.registry, lambda: len(self.core.table), lambda: len(self.connections))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.clock: Callable[[], float] = time.monotonic  # the loop's clock once started

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self.clock = loop.time
        host = self.config.listen.host or "0.0.0.0"
        # Port 0 (tests): any free UDP port, then TCP on the same one, which may be taken: try another.
        for attempt in range(20 if self.config.listen.port == 0 else 1):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(host, self.config.listen.port))
            self._udp = transport
            _bigger_buffer(transport)
            try:
                self._tcp = await loop.create_server(lambda: _Tcp(self), host, self.port, reuse_address=True,
                                                     backlog=max(128, min(self.config.max_connections, 4096)))
                break
            except OSError:
                transport.close()
                self._udp = None
                if attempt == 19 or self.config.listen.port != 0:
                    raise
        log.info("SIP: redirect server on %s (UDP and TCP), route %s", self.address, self.config.route)

    @property
    def port(self) -> int:
        assert self._udp is not None, "start() first"
        return int(self._udp.get_extra_info("sockname")[1])

    @property
    def address(self) -> str:
        assert self._udp is not None, "start() first"
        host, port = self._udp.get_extra_info("sockname")[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # -- the call path ----------------------------------------------------------------------------------------
    def handle(self, data: bytes, peer: Hashable, source: tuple[str, int], *, reliable: bool) -> None:
        try:
            events = self.core.receive(data, peer, source, self.clock(), reliable=reliable)
        except Exception:  # the core is fuzzed never to raise: this is the last guard of the listener
            log.exception("SIP: internal error on a message from %s", source[0])
            self.dropped("internal")
            return
        self._run(events)

    def _run(self, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, Send):
                self._send(e)
            elif isinstance(e, Decide):
                self._decide(e)
            elif isinstance(e, Dropped):
                self.dropped(e.kind)
        self._arm()

    def _send(self, e: Send) -> None:
        peer = e.peer
        if isinstance(peer, _Tcp):
            peer.write(e.data)
        elif self._udp is not None and isinstance(peer, tuple):
            self._udp.sendto(e.data, peer)
        if self.metrics is not None:
            self.metrics.sent(e)

    def _decide(self, e: Decide) -> None:
        campaign = e.campaign if e.campaign is not None else self.sources.lookup(e.source[0])[1]
        key = e.key
        self.pending.add(key)

        def then(outcome: Outcome) -> None:
            self._decided(e, answer_for(e.number, outcome))

        try:
            caller_id = e.caller_id if self.config.caller_id is SipCallerId.HEADERS else None
            gateway = self.gateway
            res = gateway.check_now(e.number, campaign.strip(), caller_id, channel=f"SIP/{e.source[0]}",
                                    uniqueid=e.call_id[:128], source=AuditSource.SIP)
            pending = None
            if res.__class__ is not Outcome:
                check = cast(CallCheck, res)
                if gateway.finish_then(check, then):
                    return  # the audit log calls ``then`` once the ALLOW's record is durable
                pending = gateway.finish(check)
        except Exception:
            log.exception("SIP: internal error while deciding (answering 503)")
            self._decided(e, Unavailable(INTERNAL))
            return
        if pending is None:
            self._decided(e, answer_for(e.number, cast(Outcome, res)))
            return
        task = self.loop.create_task(self._later(e, pending))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _later(self, e: Decide, pending: Coroutine[Any, Any, Outcome]) -> None:
        try:
            outcome = await pending
        except asyncio.CancelledError:
            self._decided(e, Unavailable(INTERNAL))
            raise
        except Exception:
            log.exception("SIP: internal error while deciding (answering 503)")
            self._decided(e, Unavailable(INTERNAL))
            return
        self._decided(e, answer_for(e.number, outcome))

    def _decided(self, e: Decide, answer: Answer) -> None:
        self.pending.discard(e.key)
        self._run(self.core.decided(e.key, answer, self.clock()))
        if self.draining and not self.pending:
            self.idle.set()

    # -- the transaction timers ------------------------------------------------------------------------------
    def _arm(self) -> None:
        at = self.core.next_timer()
        if at is None or self._loop is None:
            return
        if self._timer is not None:
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        events = self.core.timers(self.clock())
        for e in events:
            if isinstance(e, Send) and e.status == 503 and not e.retransmission:
                log.warning("SIP: a decision took longer than [sip] decision_timeout: answered 503")
        # A decision over its deadline was answered: its late outcome finds the transaction done.
        self._run(events)

    def dropped(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.dropped(kind)

    # -- shutdown ----------------------------------------------------------------------------------------------
    async def drain_and_close(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (app.py's interface)
        """New INVITEs and OPTIONS answered 503 (the proxy sends its calls elsewhere), decisions in flight
        answered (up to ``timeout``), then both listeners closed."""
        self.draining = self.core.draining = True
        if self._tcp is not None:
            self._tcp.close()
        if self.pending:
            self.idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), self.config.drain_timeout if timeout is None else timeout)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for c in list(self.connections):
            c._abort()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None
