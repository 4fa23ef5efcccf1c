"""The hot Redis link never fails a request whose reply is already in the socket (issue 22 #9).

A loop that was busy (a burst right after start, the CPUs taken) fires the link's deadline timer when it gets
back; uvloop runs due timers before it polls its sockets, so the reply that arrived meanwhile was still unread
and the request failed as a timeout. A real redis-server, the loop stalled on purpose after the request left.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.state.redis_link import Link
from tests.state.redis_server import RedisServer

uvloop = pytest.importorskip("uvloop", reason="uvloop (fast extra) runs timers before polling sockets")

PING = b"*1\r\n$4\r\nPING\r\n"


def test_a_reply_in_the_socket_survives_a_stalled_loop(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        async def main() -> list[object]:
            async def resolve() -> tuple[str, int]:
                return "127.0.0.1", redis.port

            link = Link(resolve, connect_timeout=2.0, op_timeout=0.1)
            try:
                assert await link.call(PING) == b"PONG"  # connected
                loop = asyncio.get_running_loop()
                got = []
                for _ in range(3):  # the loop stalls before the request is written: its deadline starts then
                    task = asyncio.ensure_future(link.call(PING))
                    loop.call_soon(time.sleep, 0.35)  # after the call, before its flush
                    got.append(await task)
                for _ in range(3):  # the loop stalls after the request left, while Redis answers
                    task = asyncio.ensure_future(link.call(PING))
                    for _ in range(3):
                        await asyncio.sleep(0)
                    time.sleep(0.35)  # noqa: ASYNC251 - the stall under test
                    got.append(await task)
                return got
            finally:
                link.close()

        assert uvloop.run(main()) == [b"PONG"] * 6
    finally:
        redis.stop()
