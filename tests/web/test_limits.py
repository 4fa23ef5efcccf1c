"""The web port cannot take what FastAGI needs, nor answer 500: a real aiohttp listener, real sockets.

Half-sent requests are cut (headers, then bodies, each under a deadline); connections beyond
``max_connections`` and into the descriptors kept for FastAGI are closed at once and counted; inputs that
used to raise deep inside (a non-ASCII Authorization header, a year at datetime's edge) are 4xx.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.web import api as web_api
from gateway.web.limits import fd_limit
from tests.web.conftest import Served


async def _closed(sock: socket.socket, within: float = 5.0) -> bool:
    """The server closed ``sock`` (EOF or reset) within ``within`` seconds."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    try:
        async with asyncio.timeout(within):
            while True:
                try:
                    data = await loop.sock_recv(sock, 4096)
                except ConnectionResetError:
                    return True
                if not data:
                    return True
    except TimeoutError:
        return False


def _connect(served: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.web.port))


async def test_half_sent_headers_are_cut_after_the_header_timeout(served: Served) -> None:
    guard = served.web.guard
    assert guard is not None
    guard.header_timeout = 0.3
    sock = _connect(served)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        assert await _closed(sock)
    finally:
        sock.close()
    status, _ = await served.get("/healthz")  # the port still serves
    assert status == 200


async def test_half_sent_bodies_get_408(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_api, "BODY_TIMEOUT", 0.3)
    sock = _connect(served)
    try:
        sock.sendall(b"POST /api/optouts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"num")
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        async with asyncio.timeout(5):
            head = await loop.sock_recv(sock, 4096)
        assert head.startswith(b"HTTP/1.1 408"), head
    finally:
        sock.close()


async def test_connections_over_the_cap_or_into_the_reserve_are_refused_and_counted(served: Served) -> None:
    guard = served.web.guard
    assert guard is not None
    guard.max_connections = guard.open + 1
    held = _connect(served)
    try:
        await asyncio.sleep(0)  # let the server take the held connection
        for _ in range(50):
            if guard.open >= guard.max_connections:
                break
            await asyncio.sleep(0.01)
        extra = _connect(served)
        try:
            assert await _closed(extra)
        finally:
            extra.close()
    finally:
        held.close()
    guard.max_connections = 10_000
    guard.fd_reserve = fd_limit()  # every descriptor kept for FastAGI: the web takes none
    extra = _connect(served)
    try:
        assert await _closed(extra)
    finally:
        extra.close()
    assert guard.refusals == 2
    assert served.metrics.registry.get_sample_value("dnc_web_connections_refused_total") == 2.0
    guard.fd_reserve = 0


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1900-01-01T00:00:00Z"])
async def test_out_of_range_times_are_400_not_500(served: Served, at: str) -> None:
    status, body = await served.get("/api/check", params={"number": "0612345678", "campaign": "prospect", "at": at})
    assert status == 400 and "out of range" in body["error"]


async def test_a_non_ascii_authorization_header_is_401_not_500(served: Served) -> None:
    sock = _connect(served)
    try:
        sock.sendall(b"POST /api/registry/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\xc3\xa9\xff\xfe\r\n"
                     b"Content-Length: 0\r\nConnection: close\r\n\r\n")
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        async with asyncio.timeout(5):
            head = await loop.sock_recv(sock, 4096)
        assert head.split(b" ")[1] in (b"400", b"401", b"403"), head
    finally:
        sock.close()
