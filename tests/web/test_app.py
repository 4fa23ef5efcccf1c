"""The SSE feed over a real socket: summary first, ticks as calls are decided, masked numbers only, bounded."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp

from gateway.config import Config
from tests.web.conftest import Served, serve


async def next_event(stream: aiohttp.StreamReader) -> tuple[str, dict[str, Any], bytes]:
    """The next ``event:``/``data:`` block (skipping comments and the retry line), with its raw bytes."""
    while True:
        raw = await asyncio.wait_for(stream.readuntil(b"\n\n"), 3.0)
        fields = dict(line.split(": ", 1) for line in raw.decode().strip().split("\n") if ": " in line
                      and not line.startswith(":"))
        if "event" in fields:
            return fields["event"], json.loads(fields["data"]), raw


async def test_feed_sends_summary_then_ticks_with_masked_numbers(served: Served) -> None:
    seen = b""
    async with served.http.get(served.url("/api/events")) as r:
        assert r.status == 200 and r.content_type == "text/event-stream"
        event, summary, raw = await next_event(r.content)
        seen += raw
        assert event == "summary"
        assert summary["totals"]["decisions"] == 0 and summary["lists"]
        for number, campaign in (("0612000001", "legacy"), ("+33 6 12 00 02 00", "survey"), ("0612000010", "legacy")):
            await served.gateway.check(number, campaign)
        ticks: list[dict[str, Any]] = []
        while sum(len(t["latest"]) for t in ticks) < 2:
            event, data, raw = await next_event(r.content)
            seen += raw
            if event == "tick":
                ticks.append(data)
        latest = [item for t in ticks for item in t["latest"]]
        assert {(i["campaign"], i["reason"], i["would_block"], i["number"]) for i in latest} == {
            ("legacy", "opposition_list", False, "+3361•••••01"), ("survey", "internal_dnc", True, "+3361•••••00")}
        assert ticks[-1]["totals"]["decisions"] == 3
        # The reload's status event (the holder's swap pokes the hub from the worker thread).
        await served.gateway.holder.reload(["bloctel"])
        while event != "status":
            event, data, raw = await next_event(r.content)
            seen += raw
        assert {entry["name"] for entry in data["lists"]} == set(served.gateway.config.lists)
    for digits in ("612000001", "612000200", "612000010", "0612"):
        assert digits.encode() not in seen, digits


async def test_close_ends_open_streams_promptly(sample_config: Config, clock: Callable[[], datetime]) -> None:
    running, web = await serve(sample_config, clock, live_interval=0.05)
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"http://{web.address}/api/events")
        assert (await next_event(r.content))[0] == "summary"
        started = time.monotonic()
        await web.close()
        assert time.monotonic() - started < 1.5
        assert await asyncio.wait_for(r.content.read(), 2) == b""  # the stream ended cleanly
        r.release()
    await running.gateway.close()


async def test_feed_is_bounded_in_clients(sample_config: Config, clock: Callable[[], datetime]) -> None:
    running, web = await serve(sample_config, clock, max_clients=2)
    try:
        async with aiohttp.ClientSession() as http:
            first = await http.get(f"http://{web.address}/api/events")
            second = await http.get(f"http://{web.address}/api/events")
            async with http.get(f"http://{web.address}/api/events") as third:
                assert third.status == 503 and "too many" in (await third.json())["error"]
            first.close()
            second.close()
    finally:
        await web.close()
        await running.gateway.close()


async def test_a_browser_leaving_the_page_logs_no_error(served: Served, caplog: Any) -> None:
    """Closing the page (the tab, a reload) drops the SSE connection: the next write fails on a closed socket,
    which is how a stream ends, not an internal error; no ERROR record, no traceback, the client let go."""
    caplog.set_level("DEBUG")
    r = await served.http.get(served.url("/api/events"))
    assert (await next_event(r.content))[0] == "summary"
    r.close()  # the browser goes away without a word
    for i in range(200):  # ticks to write into the closed connection, until the server notices
        await served.gateway.check(f"06120000{i % 5 + 1:02d}", "legacy")
        await asyncio.sleep(0.02)
        if not served.web.hub.clients:
            break
    assert not served.web.hub.clients
    await asyncio.sleep(0.1)  # let aiohttp finish the handler and log whatever it logs
    bad = [rec for rec in caplog.records if rec.levelname in ("ERROR", "CRITICAL") or rec.exc_info]
    assert bad == [], [(rec.name, rec.getMessage()) for rec in bad]
