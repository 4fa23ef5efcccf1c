"""Limits on the web port, so that it can never take what FastAGI needs.

- a cap on open web connections (``max_connections``): one more is closed at once and counted;
- a reserve of file descriptors for FastAGI: a web connection whose descriptor is among the process's last
  ``fd_reserve`` ones (``RLIMIT_NOFILE``) is closed at once, so that the calls still find descriptors;
- a deadline for a request's headers (``header_timeout``, from the connection's opening): a client that
  sends half a request is cut, instead of holding its descriptor forever (aiohttp waits for headers with no
  limit of its own). Bodies are read under their own timeout (``api.read_body``); an idle kept-alive
  connection is closed by aiohttp's ``keepalive_timeout``.

The guard wraps aiohttp's protocol (delegation): it sees each connection's opening and closing only.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from typing import Protocol, cast

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 256
FD_RESERVE = 256  # descriptors kept for FastAGI (and the audit, state and list files)
HEADER_TIMEOUT = 10.0


class Counts(Protocol):
    """Where refused connections are counted (``Metrics.web_refused``)."""

    def inc(self, amount: float = 1) -> None: ...


def fd_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class _Inner(Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> bool | None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...


class ConnectionGuard:
    """Counts the web connections and makes the protocols that enforce the limits."""

    def __init__(self, inner: Callable[[], asyncio.BaseProtocol], *, max_connections: int = MAX_CONNECTIONS,
                 fd_reserve: int = FD_RESERVE, header_timeout: float = HEADER_TIMEOUT,
                 refused: Counts | None = None) -> None:
        self.inner = inner
        self.max_connections = max_connections
        self.fd_reserve = fd_reserve
        self.header_timeout = header_timeout
        self.refused = refused
        self.open = 0
        self.refusals = 0
        self._warned = False

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self, cast(_Inner, self.inner()))

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        sock = transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        why = ""
        if self.open >= self.max_connections:
            why = f"{self.open} web connections open (max_connections)"
        elif fd >= fd_limit() - self.fd_reserve:
            why = f"file descriptor {fd} is among the last {self.fd_reserve} kept for FastAGI"
        if not why:
            self._warned = False
            return True
        self.refusals += 1
        if self.refused is not None:
            self.refused.inc()
        if not self._warned:  # once per episode: a flood must not flood the log too
            log.warning("web: refusing connections: %s (counted in dnc_web_connections_refused_total)", why)
            self._warned = True
        return False


class _Guarded(asyncio.Protocol):
    __slots__ = ("admitted", "guard", "inner", "timer", "transport")

    def __init__(self, guard: ConnectionGuard, inner: _Inner) -> None:
        self.guard = guard
        self.inner = inner
        self.admitted = False
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if not self.guard.admit(transport):
            transport.abort() if isinstance(transport, asyncio.Transport) else transport.close()
            return
        self.admitted = True
        self.guard.open += 1
        self.timer = asyncio.get_running_loop().call_later(self.guard.header_timeout, self._headers_late)
        self.inner.connection_made(transport)

    def _headers_late(self) -> None:
        self.timer = None
        # aiohttp counts the requests whose headers it has parsed: none yet, the client is too slow (or idle).
        if getattr(self.inner, "_request_count", 1) == 0 and self.transport is not None:
            self.transport.abort() if isinstance(self.transport, asyncio.Transport) else self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.admitted:
            return
        self.admitted = False
        self.guard.open -= 1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()
