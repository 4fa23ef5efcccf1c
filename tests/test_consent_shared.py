"""Issue 13: a consent recorded over FastAGI on one gateway is honoured at once by another sharing Redis; a
refusal on the second ends it on the first, and a newer consent restores it. Two real ``serve`` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.replay.fastagi import ChannelInfo, run_session
from tests.conftest import write_sample
from tests.serving import Serve
from tests.state.redis_server import RedisServer

# Any hour, any day, no cooldown after a refusal: the test is about consent alone, at the real clock.
CAMPAIGN = """
[campaigns.callback]
regime = "consent"
consent = "consent"
caller_id = "0162000000"
check_hours = false
check_holidays = false
check_cooldown = false
check_frequency = false
"""
NUMBER = "0612000077"  # on no list


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Serve, Serve]]:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    gws: list[Serve] = []
    try:
        for i in (1, 2):  # each its own data directory (its own side store): only Redis is shared
            conf = write_sample(tmp_path / f"gw{i}", CAMPAIGN)
            conf.write_text(conf.read_text().replace('state = "memory://"', f'state = "{redis.url}"'))
            gw = Serve(conf, tmp_path, {"DNC_GATEWAY_STATE_SECRET": "consent-test", "DNC_GATEWAY_INSTANCE": f"gw{i}"})
            gw.start()
            gws.append(gw)
        yield gws[0], gws[1]
    finally:
        for gw in gws:
            gw.kill()
        redis.stop()


async def agi(gw: Serve, route: str, *args: str) -> str:
    info = ChannelInfo(f"agi://127.0.0.1:{gw.port}/{route}", route, args, uniqueid="17.1")
    session = await run_session("127.0.0.1", gw.port, info, session_timeout=10)
    return session.variables.get("DNC_RESULT", "")


async def test_a_consent_over_agi_is_honoured_at_once_by_another_gateway(pair: tuple[Serve, Serve]) -> None:
    one, two = pair
    assert await two.call(NUMBER, "callback") == ("BLOCK", "no_consent")
    assert await agi(one, "consent", NUMBER, "call", "recording-17") == "OK"
    assert await two.call(NUMBER, "callback", "0.2") == ("ALLOW", "")
    assert await one.call(NUMBER, "callback", "0.3") == ("ALLOW", "")
    assert await agi(two, "refusal", NUMBER) == "OK"  # the callee refuses on a call through the other gateway
    assert await one.call(NUMBER, "callback", "0.4") == ("BLOCK", "no_consent")
    assert await agi(one, "consent", NUMBER, "call", "recording-18") == "OK"  # asks to be called back later
    assert await two.call(NUMBER, "callback", "0.5") == ("ALLOW", "")
    assert await agi(one, "consent", "not a number") == "INVALID"
