"""FastAGI limits: one peer cannot take every session, and idle connections are cut, counted, not logged one
by one. A real server on loopback, real sockets."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.service import Gateway
from tests.agi.fake_asterisk import env_block
from tests.agi.test_server import raw_exchange, serving


async def test_one_peer_is_capped_and_the_others_keep_their_sessions(gateway: Gateway) -> None:
    async with serving(gateway, max_sessions_per_peer=2, read_timeout=5.0) as h:
        idle = [await asyncio.open_connection("127.0.0.1", h.port) for _ in range(2)]
        try:
            async with asyncio.timeout(5):
                while len(h.server.sessions) < 2:  # noqa: ASYNC110 (bounded)
                    await asyncio.sleep(0.005)
            third = await raw_exchange(h.port, b"", close_write=False)  # refused at once: FAILURE
            assert b"FAILURE" in third or b"result=-1" in third or third in (b"", b"<reset>"), third
            assert h.metrics.errors["overload"] == 1
            assert h.server.per_peer == {"127.0.0.1": 2}
        finally:
            for _reader, writer in idle:
                writer.close()
        await h.settle()
        assert h.server.per_peer == {}
        await h.assert_still_answers()


async def test_idle_connections_are_counted_not_logged_one_by_one(gateway: Gateway,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "gateway.agi.server")
    async with serving(gateway, read_timeout=0.2) as h:
        idle = [await asyncio.open_connection("127.0.0.1", h.port) for _ in range(5)]
        try:
            for reader, _writer in idle:
                async with asyncio.timeout(5):
                    await reader.read()  # the server cuts it
        finally:
            for _reader, writer in idle:
                writer.close()
        await h.settle()
        assert h.metrics.errors["timeout"] == 5
    lines = [r for r in caplog.records if "idle connection" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]


async def test_numbers_in_campaign_and_channel_names_are_masked_in_the_log(gateway: Gateway,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A dialplan that sends the number as the campaign, and channel names that carry it (Local/0612…@ctx):
    the log masks their digit runs as it masks numbers."""
    caplog.set_level(logging.INFO)
    async with serving(gateway) as h:
        await h.call(env_block(args=("0612000001", "0698765432"), channel="Local/0698765432@from-internal-0001"))
        await h.call(env_block(script="check0698765432", args=("0612000001", "legacy"),
                               channel="Local/0698765432@from-internal-0002"))
        await h.settle()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "unknown campaign" in text and "unknown route" in text
    assert "0698765432" not in text and "698765432" not in text
    assert "0698••••32" in text
