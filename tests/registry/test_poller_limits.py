"""A list URL that trickles bytes, or whose URL holds secrets: a real local HTTP server, a real poller.

The download has one deadline in all (``fetch_timeout``): a server that sends a byte now and then never trips
a per-read timeout, and a SIGHUP reload waits for the poll. The failure shows without the URL's password or
query token.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket

from aiohttp import web

from gateway.numbers import Normaliser
from gateway.registry.holder import RegistryHolder
from gateway.registry.model import ListKind, ListSpec
from gateway.registry.poller import Outcome, RegistryPoller
from gateway.web.status import failure_status

BODY = b"0612000001\n0612000002\n0612000003\n"


async def trickling(request: web.Request) -> web.StreamResponse:
    if request.path.endswith(".sha256"):
        return web.Response(text=hashlib.sha256(BODY).hexdigest())
    response = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
    await response.prepare(request)
    for byte in BODY:  # a byte every 50 ms: each read is quick, the whole never ends in time
        await response.write(bytes([byte]))
        await asyncio.sleep(0.05)
    return response


async def test_a_trickling_server_hits_the_total_deadline_and_the_error_hides_the_secrets() -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", trickling)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    port = sock.getsockname()[1]
    url = f"http://bob:s3cret@127.0.0.1:{port}/bloctel.txt?token=T0KEN"
    spec = ListSpec("bloctel", ListKind.OPPOSITION, None, url=url, fetch_timeout=0.5)
    holder = RegistryHolder({"bloctel": spec}, Normaliser("FR"))
    poller = RegistryPoller(holder, [spec], first_wait=0.0, read_timeout=30.0)
    try:
        async with asyncio.timeout(10):  # the SIGHUP path: poll_now returns, whatever the server does
            assert await poller.poll_now() == {"bloctel": Outcome.FAILED}
        error = poller.status["bloctel"].last_error
        assert "fetch_timeout" in error
        shown = str(failure_status(holder.failures["bloctel"])) + poller.status["bloctel"].url + error
        assert "s3cret" not in shown and "T0KEN" not in shown
    finally:
        await poller.close()
        await runner.cleanup()
