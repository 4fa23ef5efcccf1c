"""The four bugs of panoramisk 1.4's ``fast_agi.Application`` that made us write our own server.

Each test first shows panoramisk failing (in a subprocess when the failure hangs or spins, so the test run
itself never does), then shows our server handling the same bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import pytest

from gateway.agi.server import AgiServer
from gateway.config import Config
from gateway.service import Gateway
from tests.agi.fake_asterisk import call, env_block

pytest.importorskip("panoramisk.fast_agi")

HOST = "127.0.0.1"

# A panoramisk FastAGI app with one route, and a heartbeat line every 20 ms to show its event loop is alive.
PANORAMISK_APP = """
import asyncio, sys
from panoramisk.fast_agi import Application

async def main():
    loop = asyncio.get_running_loop()
    app = Application(loop=loop)

    async def check(request):
        first = await request.send_command('SET VARIABLE DNC_REASON "x"')
        second = await request.send_command('GET VARIABLE DNC_CAMPAIGN')
        print("results", first, second, flush=True)

    app.add_route("check", check)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    print("port", server.sockets[0].getsockname()[1], flush=True)
    while True:
        print("beat", flush=True)
        await asyncio.sleep(0.02)

asyncio.run(main())
"""


class PanoramiskProcess:
    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port

    async def lines_within(self, seconds: float) -> list[str]:
        """Every stdout line the app prints in the next ``seconds``."""
        assert self.proc.stdout is not None
        out: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), left)
            except TimeoutError:
                break
            if not line:
                break
            out.append(line.decode().strip())
        return out


@contextlib.asynccontextmanager
async def panoramisk_app() -> AsyncIterator[PanoramiskProcess]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", PANORAMISK_APP,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            line = (await proc.stdout.readline()).decode().split()
        assert line[0] == "port", line
        yield PanoramiskProcess(proc, int(line[1]))
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


@pytest.fixture
async def ours(sample_config: Config, clock: Callable[[], datetime]) -> AsyncIterator[AgiServer]:
    gw = Gateway(sample_config, clock=clock)
    await gw.start()
    gw.holder.load_all()
    import dataclasses

    server = AgiServer(gw, dataclasses.replace(sample_config.agi, read_timeout=0.3))
    await server.start()
    yield server
    await server.drain_and_close(1.0)
    await gw.close()


async def loop_lag(seconds: float) -> float:
    """The longest stall of this event loop over ``seconds``."""
    worst = 0.0
    end = time.perf_counter() + seconds
    while (t := time.perf_counter()) < end:
        await asyncio.sleep(0.005)
        worst = max(worst, time.perf_counter() - t - 0.005)
    return worst


# 1. A client that closes before the blank line: panoramisk's `while b'\n\n' not in buffer: buffer += await
#    reader.read(100)` gets b"" forever without ever yielding, and the whole event loop freezes.

async def test_1_panoramisk_freezes_on_early_close() -> None:
    async with panoramisk_app() as app:
        assert "beat" in await app.lines_within(0.1)
        _, writer = await asyncio.open_connection(HOST, app.port)
        writer.write(env_block()[:60])
        writer.close()
        # Frozen: the heartbeat (every 20 ms) stops for good. Allow a few rounds for a busy machine.
        for _ in range(10):
            if "beat" not in await app.lines_within(0.4):
                break
        else:
            pytest.fail("panoramisk kept beating: bug 1 not reproduced")
        assert "beat" not in await app.lines_within(0.4)


async def test_1_ours_stays_responsive_after_early_close(ours: AgiServer) -> None:
    for _ in range(20):
        _, writer = await asyncio.open_connection(HOST, ours.port)
        writer.write(env_block()[:60])
        writer.close()
    assert await loop_lag(0.2) < 0.1
    r = await call(HOST, ours.port, env_block(args=("0612000001", "legacy")))
    assert r.variables["DNC_REASON"] == "opposition_list"


# 2. No timeouts: a client that connects and says nothing holds a panoramisk handler forever.

async def test_2_panoramisk_has_no_read_timeout() -> None:
    async with panoramisk_app() as app:
        reader, writer = await asyncio.open_connection(HOST, app.port)
        writer.write(b"agi_network: yes\n")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(), 1.0)  # still open after 1 s (and would be forever)
        writer.transport.abort()  # an orderly close would trigger bug 1


async def test_2_ours_closes_a_silent_client_at_the_read_timeout(ours: AgiServer) -> None:
    reader, writer = await asyncio.open_connection(HOST, ours.port)
    writer.write(b"agi_network: yes\n")
    started = time.perf_counter()
    with contextlib.suppress(ConnectionError):
        assert await asyncio.wait_for(reader.read(), 2.0) == b""
    assert time.perf_counter() - started < 1.0
    writer.close()


# 3. Routes are looked up with the whole agi_network_script, query string included: "check?x=1" misses.

async def test_3_panoramisk_misses_a_route_with_a_query_string() -> None:
    async with panoramisk_app() as app:
        r = await call(HOST, app.port, env_block(script="check?campaign=legacy", args=("0612000001",)),
                       read_timeout=2.0)
        assert r.commands == [] and r.closed_by_server  # "No route for the request"
        r = await call(HOST, app.port, env_block(script="check", args=("0612000001",)), read_timeout=2.0)
        assert r.commands  # the same request without the query string is served


async def test_3_ours_ignores_the_query_string(ours: AgiServer) -> None:
    r = await call(HOST, ours.port, env_block(script="check?campaign=legacy", args=("0612000001",)))
    assert r.variables["DNC_REASON"] == "opposition_list"


# 4. An inline HANGUP is read as the reply to the command in flight; that command's real reply is then read
#    as the reply to the next one: every later reply is shifted by one.

async def test_4_panoramisk_shifts_replies_after_hangup() -> None:
    async with panoramisk_app() as app:
        r = await call(HOST, app.port, env_block(script="check"), variables={"DNC_CAMPAIGN": "legacy"},
                       hangup_before_reply=1, read_timeout=2.0)
        assert r.commands == ['SET VARIABLE DNC_REASON "x"', "GET VARIABLE DNC_CAMPAIGN"]
        results = [line for line in await app.lines_within(1.0) if line.startswith("results")]
        assert results, "the route did not finish"
        # The GET got the SET's "200 result=1", without the value: ('1', '') instead of ('1', 'legacy').
        assert "AGIResultHangup" in results[0] and "'result': ('1', '')" in results[0]
        assert "legacy" not in results[0]


async def test_4_ours_keeps_replies_in_step_after_hangup(ours: AgiServer) -> None:
    r = await call(HOST, ours.port, env_block(), variables={"DNC_NUMBER": "0612000001", "DNC_CAMPAIGN": "legacy"},
                   hangup_before_reply=1)
    assert r.variables["DNC_REASON"] == "opposition_list"  # number and campaign both read right
    r = await call(HOST, ours.port, env_block(args=("0612000001", "legacy")), hangup_before_reply=2)
    assert r.variables["DNC_VERDICT"] == "BLOCK" and r.variables["DNC_REASON"] == "opposition_list"
