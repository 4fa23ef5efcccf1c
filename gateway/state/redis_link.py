"""One multiplexed Redis connection for the hot path: commands pipelined in order, replies parsed by hiredis.

Why not redis-py's client for the per-call script: its asyncio path costs ~70 µs of CPU per command on this
machine (a pooled connection taken and given back under a lock, three timers, the command encoded argument by
argument in Python, retry and observability wrappers). A gateway sends one script per call, so a connection shared
by every call in flight does the same with a few microseconds: the command is one ``bytes`` built from pre-encoded
parts, the writes of one loop iteration go out in one ``send``, and hiredis (C) parses every reply of a read.
Redis answers a connection's commands in order, so replies are matched to callers first in, first out.

redis-py stays the client for everything else (set-up, refusals, opt-outs, scrubs, Sentinel discovery, Cluster).

Timeouts without a timer per call: one timer watches the oldest request in flight. A request past its deadline
fails alone (its reply, when it comes, is dropped); when nothing at all came back on the connection since that
request was sent, the connection is deemed dead and closed, which fails every request in flight at once
(a vanished primary costs one timeout, not one per call).
"""

from __future__ import annotations

import asyncio
import math
import select
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast

import hiredis

Address = tuple[str, int]
Resolver = Callable[[], Awaitable[Address]]  # where the primary is now (a fixed host, or asked of the Sentinels)

# Error replies after which this connection must not be used again: the server it reaches is no longer the
# primary (a failover demoted it) or not ready; the next call reconnects, through the resolver.
_STALE_SERVER = (b"READONLY", b"MASTERDOWN", b"LOADING", b"NOREPLICAS")


class LinkError(ConnectionError):
    """The connection failed or was closed: the call's outcome is unknown (it may have run)."""


class LinkTimeout(TimeoutError):
    """No reply within the per-operation timeout."""


def command(*parts: bytes) -> bytes:
    """A command in RESP, from already-encoded arguments (for what is built once and reused)."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%b\r\n" % (len(p), p) for p in parts)


def bulk(p: bytes) -> bytes:
    """One argument in RESP (to join pre-encoded fragments into a command)."""
    return b"$%d\r\n%b\r\n" % (len(p), p)


_UNSENT = math.inf  # the send time of a request still waiting for its flush: no deadline yet


class _Wire(asyncio.Protocol):
    """The socket side: buffered writes flushed once per loop iteration, replies handed to waiters in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[_Wire], None]) -> None:
        self.loop = loop
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.sent_at: deque[float] = deque()  # loop time of each request in ``waiting``
        self.last_reply = 0.0  # loop time of the last read
        self.out: list[bytes] = []
        self.lost: BaseException | None = None
        self._on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.last_reply = self.loop.time()

    def send(self, packed: bytes, now: float) -> asyncio.Future[Any]:
        if self.lost is not None:
            raise LinkError(f"Redis connection lost: {self.lost}")
        fut = self.loop.create_future()
        if not self.out:
            self.loop.call_soon(self._flush)
        self.out.append(packed)
        self.waiting.append(fut)
        self.sent_at.append(_UNSENT)  # its deadline starts when _flush writes it
        return fut

    def _flush(self) -> None:
        out, self.out = self.out, []
        if self.transport is not None and self.lost is None:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            # A request's deadline runs from its write, not from its call: a loop busy with a burst between the
            # two has not given Redis the request yet.
            sent_at, now = self.sent_at, self.loop.time()
            for i in range(max(0, len(sent_at) - len(out)), len(sent_at)):
                sent_at[i] = now

    def unread(self) -> bool:
        """Bytes wait in the socket, not yet handed to :meth:`data_received` (a loop that was busy, or that runs
        its timers before polling its sockets, as uvloop does)."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(readable)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting, sent_at = self.waiting, self.sent_at
        self.last_reply = self.loop.time()
        while (reply := reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream is out of step, never guess
                self.close(LinkError("Redis sent a reply nobody asked for"))
                return
            fut = waiting.popleft()
            sent_at.popleft()
            if not fut.done():
                fut.set_result(reply)
            if isinstance(reply, hiredis.ReplyError) and str(reply).encode().startswith(_STALE_SERVER):
                self.close(LinkError(f"Redis answered {reply}"))
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(LinkError(f"Redis connection lost{': ' + str(exc) if exc else ''}"))

    def close(self, why: BaseException) -> None:
        if self.lost is None:
            self.lost = why
            self._on_lost(self)
        if self.transport is not None:
            self.transport.abort()
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(why)
        self.sent_at.clear()


class Link:
    """A lazily (re)connected, multiplexed connection to the Redis primary that ``resolve`` names.

    ``setup`` are commands sent first on every new connection (AUTH, SELECT, SCRIPT LOAD, ROLE...); ``check``
    validates their replies (raise to refuse the server, e.g. a replica that still thinks it is the primary).
    """

    def __init__(self, resolve: Resolver, *, connect_timeout: float, op_timeout: float,
                 setup: list[bytes] | None = None,
                 check: Callable[[list[Any]], None] | None = None) -> None:
        self._resolve = resolve
        self.connect_timeout = connect_timeout
        self.op_timeout = op_timeout
        self._setup = setup or []
        self._check = check
        self._wire: _Wire | None = None
        self._connecting: asyncio.Future[_Wire] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.address: Address | None = None

    @property
    def connected(self) -> bool:
        return self._wire is not None

    def set_up_with(self, setup: list[bytes], check: Callable[[list[Any]], None] | None) -> None:
        """The set-up commands and their check for the next connections (one already open keeps going)."""
        self._setup, self._check = setup, check

    async def call(self, packed: bytes) -> Any:
        """Send one packed command and return its reply (a ``hiredis.ReplyError`` for an error reply)."""
        wire = self._wire
        if wire is None:
            wire = await self._connect()
        loop = wire.loop
        fut = wire.send(packed, loop.time())
        if self._timer is None:
            self._timer = loop.call_at(loop.time() + self.op_timeout, self._expire)
        return await fut

    async def _connect(self) -> _Wire:
        # Calls arriving while one connects wait for that connection rather than each opening one.
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        wire: _Wire | None = None
        try:
            async with asyncio.timeout(self.connect_timeout + self.op_timeout * 2):
                host, port = await self._resolve()
                _, wire = await loop.create_connection(lambda: _Wire(loop, self._lost), host, port)
                replies = [wire.send(c, loop.time()) for c in self._setup]
                done = [await f for f in replies]
            errors = [r for r in done if isinstance(r, hiredis.ReplyError)]
            if errors:
                raise LinkError(f"Redis {host}:{port} refused the connection's set-up: {errors[0]}")
            if self._check is not None:
                self._check(done)
        except BaseException as e:
            if wire is not None:
                wire.close(LinkError("set-up failed"))
            self._connecting.set_exception(e if isinstance(e, Exception) else LinkError(str(e)))
            self._connecting.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            self._connecting = None
            if isinstance(e, TimeoutError):
                raise LinkTimeout(f"connecting to Redis took over {self.connect_timeout + self.op_timeout * 2}s") from e
            raise
        self.address = (host, port)
        assert wire is not None
        self._wire = wire
        self._connecting.set_result(wire)
        self._connecting = None
        return wire

    def _lost(self, wire: _Wire) -> None:
        if self._wire is wire:
            self._wire = None

    def _expire(self) -> None:
        """Fail the requests past their deadline; close a connection that answered nothing since they were sent."""
        self._timer = None
        wire = self._wire
        if wire is None:
            return
        loop = wire.loop
        now = loop.time()
        waiting, sent_at = wire.waiting, wire.sent_at
        deadline = now - self.op_timeout
        if waiting and sent_at[0] <= deadline and sent_at[0] > deadline - self.op_timeout and wire.unread():
            # The replies may be in the socket already: let the loop read them first, then look again (once
            # the grace of another op_timeout is spent, a socket that stays readable no longer defers).
            self._timer = loop.call_later(0.001, self._expire)
            return
        timed_out = None
        # Requests are in the order sent: the expired ones are at the front. They stay in the queue (their reply
        # will come and be dropped) unless the connection is closed.
        for fut, at in zip(waiting, sent_at, strict=True):
            if at > deadline:
                break
            if not fut.done():
                timed_out = at
                fut.set_exception(LinkTimeout(f"no reply from Redis within {self.op_timeout}s"))
        if timed_out is not None and wire.last_reply <= timed_out:
            wire.close(LinkTimeout(f"Redis answered nothing for {self.op_timeout}s: connection closed"))
            return
        for fut, at in zip(waiting, sent_at, strict=True):
            if not fut.done():
                self._timer = loop.call_at((at if at != _UNSENT else now) + self.op_timeout, self._expire)
                return

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._wire is not None:
            self._wire.close(LinkError("closed"))
            self._wire = None
