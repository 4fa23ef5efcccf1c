"""Redis without a single point of failure (issue 16): a primary failover under Sentinel, with calls flowing.

A real primary, replica and three Sentinels on this machine; two gateways (each its own store: its own
multiplexed connection and pool) keep calling while the primary is killed (SIGKILL). Calls during the switch
fail closed, for no longer than the failover takes; no number is allowed past its cap; the gateways follow the
new primary without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.policy.decision import Reason, Verdict
from gateway.service import Gateway
from gateway.state.model import RedisSettings
from gateway.state.redis_store import KeyScheme, RedisState
from tests.conftest import FIXED_NOW
from tests.state.helpers import RETENTION
from tests.state.redis_sentinel import SentinelSet, client

NUMBERS = [f"06130{i:05d}" for i in range(200)]  # on no list: the legacy campaign allows them, 4 times each
PER_ROUND = 4  # calls per gateway per round
ROUND = 0.02  # seconds between rounds
SLACK = 1.0  # after the Sentinels name the new primary: the breaker's retry interval, a connect, a secret check


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    s = SentinelSet(tmp_path / "sentinel")
    s.start()
    yield s
    s.stop()


def gateway(config: Config, url: str, instance: int) -> Gateway:
    cfg = replace(config, gateway=replace(config.gateway, state=url, professional="acme"))
    state = RedisState(url, retention=RETENTION, secret="s3cret",
                       settings=RedisSettings(retry_interval=0.1, warm_connections=2))
    gw = Gateway(cfg, state=state, clock=lambda: FIXED_NOW)
    gw.holder.load_all()
    return gw


async def test_a_primary_failover_fails_closed_briefly_and_never_allows_past_the_cap(
        sample_config: Config, sentinels: SentinelSet) -> None:
    gws = [gateway(sample_config, sentinels.url, i) for i in (1, 2)]
    for gw in gws:
        await gw.start()
    loop = asyncio.get_running_loop()
    results: list[tuple[float, str, Verdict, Reason | None]] = []
    calls = 0

    async def one(gw: Gateway, number: str) -> None:
        d = (await gw.check(number, "legacy")).decision
        results.append((time.monotonic(), number, d.verdict, d.reason))

    async def round_of_calls() -> None:
        nonlocal calls
        batch = []
        for gw in gws:
            for _ in range(PER_ROUND):
                batch.append(one(gw, NUMBERS[calls % len(NUMBERS)]))
                calls += 1
        await asyncio.gather(*batch)

    old = sentinels.primary
    try:
        started = time.monotonic()
        while time.monotonic() - started < 0.5:  # traffic on the first primary
            await round_of_calls()
            await asyncio.sleep(ROUND)
        killed = time.monotonic()
        sentinels.kill(old)
        switched = None
        while switched is None or time.monotonic() - switched < SLACK + 1.5:
            await round_of_calls()
            await asyncio.sleep(ROUND)
            if switched is None and await loop.run_in_executor(None, sentinels.primary_port) != old:
                switched = time.monotonic()
            assert time.monotonic() - killed < 30, "no failover within 30 s"
        assert switched is not None
    finally:
        for gw in gws:
            await gw.close()

    down = [t for t, _, _, reason in results if reason is Reason.STATE_UNAVAILABLE]
    assert down, "the primary was killed under traffic: some calls must have failed closed"
    # Failed closed only while the primary was gone, and no longer than the failover (plus the slack).
    assert killed <= min(down) and max(down) <= switched + SLACK, (min(down) - killed, max(down) - switched)
    after = [(verdict, reason) for t, _, verdict, reason in results if t > switched + SLACK]
    assert after and set(after) <= {(Verdict.ALLOW, None), (Verdict.BLOCK, Reason.FREQUENCY_CAP)}, Counter(after)
    # No number allowed past its cap, across both gateways and both primaries; every ALLOW is counted on the
    # new primary (an attempt counted whose reply was lost in the kill failed closed: counted, not allowed).
    allowed = Counter(n for _, n, verdict, _ in results if verdict is Verdict.ALLOW)
    assert max(allowed.values()) == 4
    scheme = KeyScheme("acme", b"s3cret")
    new_primary = sentinels.primary_port()
    assert new_primary is not None and new_primary != old
    with client(new_primary) as r:
        for number in NUMBERS:
            key = int("33" + number[1:])
            assert r.zcard(scheme.attempts(key)) >= allowed[number], number
