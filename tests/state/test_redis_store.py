"""The Redis backend against a real redis-server: counts, caps, expiry, key privacy, outages."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.config import Config
from gateway.policy.decision import Reason, Verdict
from gateway.service import Gateway
from gateway.state.model import REFUSAL_FLOOR, Cap, RedisSettings, Retention, StateUnavailable
from gateway.state.redis_store import Breaker, KeyScheme, RedisState
from gateway.state.store import open_store
from tests.conftest import FIXED_NOW
from tests.state.helpers import RETENTION
from tests.state.redis_server import RedisServer

KEY = 33612000010  # +33 6 12 00 00 10, on the sample consent list
PRO = "acme"


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisState]:
    st = RedisState(server.url, secret="s3cret", settings=RedisSettings(retry_interval=0.1), retention=RETENTION)
    await st.start()
    yield st
    await st.close()


class Recorder:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def state_error(self, kind: str) -> None:
        self.kinds.append(kind)


def test_open_store_picks_redis() -> None:
    assert isinstance(open_store("redis://127.0.0.1:1/0", retention=RETENTION), RedisState)


async def test_history_of_an_unknown_number_is_empty(store: RedisState) -> None:
    h = await store.history(PRO, KEY)
    assert h.attempts == () and h.last_refusal is None and h.opted_out_at is None


async def test_attempts_are_counted_and_read_back_oldest_first(store: RedisState) -> None:
    for d in (3, 1, 2):
        assert await store.record_attempt(PRO, KEY, FIXED_NOW - timedelta(days=d))
    h = await store.history(PRO, KEY)
    assert h.attempts == tuple(FIXED_NOW - timedelta(days=d) for d in (3, 2, 1))
    assert (await store.history("other-pro", KEY)).attempts == ()  # per professional


async def test_cap_refuses_the_fifth_attempt_in_the_window(store: RedisState) -> None:
    cap = Cap(4, FIXED_NOW - timedelta(days=30))
    old = FIXED_NOW - timedelta(days=30, seconds=1)
    assert await store.record_attempt(PRO, KEY, old, None)  # outside the window: not counted by the cap
    results = [await store.record_attempt(PRO, KEY, FIXED_NOW + timedelta(minutes=i), cap) for i in range(6)]
    assert results == [True] * 4 + [False] * 2
    assert len((await store.history(PRO, KEY)).attempts) == 5


async def test_attempts_older_than_retention_are_pruned_and_the_key_expires(
        store: RedisState, raw: aioredis.Redis) -> None:
    await store.record_attempt(PRO, KEY, FIXED_NOW - timedelta(days=40))
    await store.record_attempt(PRO, KEY, FIXED_NOW)
    assert (await store.history(PRO, KEY)).attempts == (FIXED_NOW,)
    ttl_ms = await raw.pttl(store.scheme(PRO).attempts(KEY))
    assert timedelta(days=30) < timedelta(milliseconds=ttl_ms) <= timedelta(days=31)


async def test_refusal_keeps_the_latest_and_lives_at_least_two_years(store: RedisState, raw: aioredis.Redis) -> None:
    await store.record_refusal(PRO, KEY, FIXED_NOW)
    await store.record_refusal(PRO, KEY, FIXED_NOW - timedelta(days=5))  # late report of an older refusal
    assert (await store.history(PRO, KEY)).last_refusal == FIXED_NOW
    await store.record_refusal(PRO, KEY, FIXED_NOW + timedelta(days=1))
    assert (await store.history(PRO, KEY)).last_refusal == FIXED_NOW + timedelta(days=1)
    ttl = timedelta(milliseconds=await raw.pttl(store.scheme(PRO).refusal(KEY)))
    assert ttl >= timedelta(days=730) and ttl <= REFUSAL_FLOOR


async def test_optout_keeps_the_first_date_and_never_expires(store: RedisState, raw: aioredis.Redis) -> None:
    await store.record_optout(PRO, KEY, FIXED_NOW)
    await store.record_optout(PRO, KEY, FIXED_NOW + timedelta(days=1))
    assert (await store.history(PRO, KEY)).opted_out_at == FIXED_NOW
    assert await raw.pttl(store.scheme(PRO).optout(KEY)) == -1


async def test_no_number_appears_in_redis(store: RedisState, raw: aioredis.Redis) -> None:
    await store.record_attempt(PRO, KEY, FIXED_NOW)
    await store.record_refusal(PRO, KEY, FIXED_NOW)
    await store.record_optout(PRO, KEY, FIXED_NOW)
    keys = sorted(k.decode() for k in await raw.keys("*"))
    assert all(k.startswith("dncgw:acme:") for k in keys)
    dump = " ".join(keys) + " ".join(m.decode() for m, _ in await raw.zrange(keys[0], 0, -1, withscores=True))
    assert "612000010" not in dump
    assert KeyScheme(PRO, b"s3cret").digest(KEY) != KeyScheme(PRO, b"other").digest(KEY)


async def test_a_gateway_with_another_secret_refuses_to_count(server: RedisServer, store: RedisState) -> None:
    await store.record_attempt(PRO, KEY, FIXED_NOW)  # writes the fingerprint
    other = RedisState(server.url, secret="not-the-same", retention=RETENTION)
    try:
        with pytest.raises(StateUnavailable, match="DNC_GATEWAY_STATE_SECRET differs"):
            await other.record_attempt(PRO, KEY, FIXED_NOW)
        assert not other.healthy
    finally:
        await other.close()


async def test_redis_down_raises_state_unavailable_quickly_then_recovers(server: RedisServer) -> None:
    # One failure opens the breaker here, to see it fail fast.
    st = RedisState(server.url, retention=RETENTION,
        secret="s3cret", settings=RedisSettings(retry_interval=0.05, failures_to_open=1))
    st.metrics = rec = Recorder()
    try:
        assert await st.record_attempt(PRO, KEY, FIXED_NOW)
        assert st.healthy
        server.stop()
        started = time.perf_counter()
        with pytest.raises(StateUnavailable):
            await st.history(PRO, KEY)
        assert time.perf_counter() - started < 0.5
        assert not st.healthy and rec.kinds == ["connection"]
        with pytest.raises(StateUnavailable):  # within retry_interval: fails fast without touching the network
            await st.history(PRO, KEY)
        assert rec.kinds[-1] == "circuit_open"
        server.start()  # same port, empty data (no persistence)
        deadline = time.monotonic() + 5
        while True:
            try:
                h = await st.history(PRO, KEY)
                break
            except StateUnavailable:
                assert time.monotonic() < deadline, "no recovery after Redis came back"
                await asyncio.sleep(0.02)
        assert st.healthy and h.attempts == ()
        assert await st.record_attempt(PRO, KEY, FIXED_NOW)  # the secret fingerprint is written again
    finally:
        await st.close()


async def test_unreachable_at_start_is_not_fatal(tmp_path: Path) -> None:
    st = RedisState(RedisServer(tmp_path).url, secret="x", retention=RETENTION)  # nothing listens on that port
    await st.start()
    assert not st.healthy
    assert not await st.ping()
    await st.close()


def test_breaker_fails_fast_for_its_interval_then_lets_a_probe_through() -> None:
    b = Breaker(1.0, failures_to_open=1)
    assert b.healthy and b.allows(0.0)
    assert b.failed(10.0, "refused") is True
    assert b.failed(10.1, "refused") is False  # already down: no second log line
    assert not b.allows(10.5) and b.allows(11.1)
    assert b.succeeded() is True and b.healthy and b.succeeded() is False


# -- through the Gateway service ------------------------------------------------------------------------

def _gateway(config: Config, url: str, failure: str) -> Gateway:
    cfg = replace(config, gateway=replace(config.gateway, state=url, state_failure=failure, professional=PRO))
    gw = Gateway(cfg, state=RedisState(url, retention=RETENTION,
        secret="s3cret", settings=RedisSettings(retry_interval=0.05)),
                 clock=lambda: FIXED_NOW)
    gw.holder.load_all()
    return gw


@pytest.mark.parametrize("failure", ["closed", "open"])
async def test_gateway_applies_state_failure_and_recovers(sample_config: Config, tmp_path: Path,
                                                          failure: str) -> None:
    # A Redis that keeps its data across the outage (append-only file): one restarted empty is a lost store,
    # which fails closed until rebuilt (tests/evidence/test_state_faults.py).
    server = RedisServer(tmp_path / "persistent", persist=True)
    server.start()
    gw = _gateway(sample_config, server.url, failure)
    state = gw.state
    assert isinstance(state, RedisState)
    await gw.start()
    try:
        assert (await gw.check("0612000010", "prospect")).decision.verdict is Verdict.ALLOW
        server.stop()
        d = (await gw.check("0612000011", "prospect")).decision
        if failure == "closed":
            assert (d.verdict, d.reason) == (Verdict.BLOCK, Reason.STATE_UNAVAILABLE)
        else:
            assert d.verdict is Verdict.ALLOW
        # A number blocked by a list stays blocked whatever the state store does.
        assert (await gw.check("0612000001", "prospect")).decision.verdict is Verdict.BLOCK
        assert not state.healthy
        server.start()
        deadline = time.monotonic() + 5
        while True:  # in open mode decisions went on, uncounted: wait until a call is counted again
            d = (await gw.check("0612000012", "prospect")).decision
            if state.healthy:
                break
            assert time.monotonic() < deadline, "no recovery after Redis came back"
            await asyncio.sleep(0.02)
        assert d.verdict is Verdict.ALLOW
        for _ in range(3):
            assert (await gw.check("0612000012", "prospect")).decision.verdict is Verdict.ALLOW
        assert (await gw.check("0612000012", "prospect")).decision.reason is Reason.FREQUENCY_CAP
    finally:
        await gw.close()
        server.stop()


def test_timeouts_can_be_set_in_the_url() -> None:
    st = RedisState("redis://127.0.0.1:1/0?socket_timeout=0.3&socket_connect_timeout=0.2", retention=RETENTION)
    assert (st._op_timeout, st._connect_timeout) == (0.3, 0.2)
    assert st.url_safe == "redis://127.0.0.1:1/0"
    # no password in logs
    assert RedisState("redis://:pw@127.0.0.1:1/2", retention=RETENTION).url_safe == "redis://127.0.0.1:1/2"


# -- retention is data (issue 11) -----------------------------------------------------------------------------

SIXTY = Retention(attempts=timedelta(days=61), refusals=timedelta(days=60))


async def test_a_60_day_window_counts_day_0_on_day_40(server: RedisServer, raw: aioredis.Redis) -> None:
    st = RedisState(server.url, secret="s3cret", retention=SIXTY)
    try:
        days = [FIXED_NOW + timedelta(days=d) for d in (0, 35, 40)]
        # window_days = 60, max_attempts = 2: the third call is over the cap
        assert [await st.record_attempt(PRO, KEY, at, Cap(2, at - timedelta(days=60))) for at in days] == [
            True, True, False]
        assert (await st.history(PRO, KEY)).attempts == tuple(days[:2])
        ttl = timedelta(milliseconds=await raw.pttl(st.scheme(PRO).attempts(KEY)))
        assert timedelta(days=60) < ttl <= timedelta(days=61)
    finally:
        await st.close()


async def test_open_store_passes_retention_and_settings() -> None:
    st = open_store("redis://127.0.0.1:1/0", retention=SIXTY, op_timeout=0.3, failures_to_open=5,
                    max_connections=8, warm_connections=4)
    assert isinstance(st, RedisState)
    assert st.retention == SIXTY and st._op_timeout == 0.3
    assert st.settings == RedisSettings(op_timeout=0.3, failures_to_open=5, max_connections=8, warm_connections=4)
    await st.close()


async def test_a_longer_retention_lengthens_the_ttls_already_running(server: RedisServer,
                                                                     raw: aioredis.Redis) -> None:
    month = Retention(timedelta(days=31), timedelta(days=60))
    st = RedisState(server.url, secret="s3cret", retention=month)
    try:
        await st.record_attempt(PRO, KEY, FIXED_NOW)
        await st.record_attempt(PRO, KEY + 1, FIXED_NOW)
        key = st.scheme(PRO).attempts(KEY)
        await raw.pexpire(key, int(timedelta(days=20).total_seconds() * 1000))  # written 11 days ago
        st.set_retention(SIXTY)
        await asyncio.gather(*st._lengthening)
        # 20 days left under a month's retention: 50 under the new one, as if it had applied since the write.
        assert timedelta(days=49) < timedelta(milliseconds=await raw.pttl(key)) <= timedelta(days=50)
        other = timedelta(milliseconds=await raw.pttl(st.scheme(PRO).attempts(KEY + 1)))
        assert timedelta(days=60) < other <= timedelta(days=61)
        st.set_retention(SIXTY)  # unchanged: nothing to do
        assert not st._lengthening
        # Day 40: the day-0 attempt is inside the new horizon, so the next write does not trim it.
        assert await st.record_attempt(PRO, KEY, FIXED_NOW + timedelta(days=40))
        assert len((await st.history(PRO, KEY)).attempts) == 2
    finally:
        await st.close()


# -- the breaker: consecutive failures open it, one slow call never does (issue 11) ------------------------------

def test_breaker_opens_after_consecutive_failures_only() -> None:
    b = Breaker(retry_interval=1.0, failures_to_open=3)
    assert b.failed(10.0, "timeout") is False and b.allows(10.0) and not b.is_open and not b.healthy
    assert b.failed(10.1, "timeout") is False and b.allows(10.1)
    assert b.succeeded() is False and b.healthy  # a success in between: the count starts over
    assert b.failed(11.0, "timeout") is False
    assert b.failed(11.1, "timeout") is False
    assert b.failed(11.2, "refused") is True  # the third in a row opens it (one log line)
    assert b.is_open and not b.allows(11.2) and not b.allows(12.19) and b.allows(12.2)
    assert b.failed(12.2, "refused") is False  # the probe failed: open again from now, no new log line
    assert not b.allows(13.1) and b.allows(13.2)
    assert b.succeeded() is True and b.healthy and b.allows(13.2) and b.failures == 0


def test_breaker_needs_at_least_one_failure() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Breaker(1.0, failures_to_open=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_one_failed_round_trip_fails_its_call_only(server: RedisServer, raw: aioredis.Redis) -> None:
    clock = FakeClock()  # never moves unless the test moves it: the breaker's interval is data
    st = RedisState(server.url, secret="s3cret", monotonic=clock, retention=RETENTION,
                    settings=RedisSettings(op_timeout=0.05, retry_interval=30.0, failures_to_open=3))
    st.metrics = rec = Recorder()
    await st.start()
    try:
        assert await st.record_attempt(PRO, KEY, FIXED_NOW)
        await raw.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")  # scripts wait: the next call times out
        with pytest.raises(StateUnavailable):
            await st.history(PRO, KEY)
        await raw.execute_command("CLIENT", "UNPAUSE")
        assert not st.healthy and rec.kinds == ["timeout"]
        # Still closed: the next call goes to Redis, with no interval to wait (the clock has not moved).
        assert (await st.history(PRO, KEY)).attempts == (FIXED_NOW,)
        assert st.healthy
        await raw.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
        for _ in range(3):  # three in a row: now Redis is deemed down
            with pytest.raises(StateUnavailable):
                await st.history(PRO, KEY)
        await raw.execute_command("CLIENT", "UNPAUSE")
        assert rec.kinds == ["timeout"] * 4
        with pytest.raises(StateUnavailable, match="retrying shortly"):  # fails fast, though Redis is back
            await st.history(PRO, KEY)
        assert rec.kinds[-1] == "circuit_open"
        clock.now += 30.0  # the interval is over: the next call probes, succeeds, and closes the breaker
        assert (await st.history(PRO, KEY)).attempts == (FIXED_NOW,)
        assert st.healthy
    finally:
        await raw.execute_command("CLIENT", "UNPAUSE")
        await st.close()


async def test_a_slow_round_trip_under_the_timeout_is_no_failure(server: RedisServer, raw: aioredis.Redis) -> None:
    st = RedisState(server.url, retention=RETENTION,
        secret="s3cret", settings=RedisSettings(op_timeout=5.0, failures_to_open=1))
    st.metrics = rec = Recorder()
    await st.start()
    try:
        await raw.execute_command("CLIENT", "PAUSE", 100, "WRITE")  # every reply 0.1 s late: slow, not failed
        assert await st.record_attempt(PRO, KEY, FIXED_NOW)
        assert st.healthy and rec.kinds == []
    finally:
        await st.close()


async def test_start_opens_the_pool(server: RedisServer, raw: aioredis.Redis) -> None:
    st = RedisState(server.url, retention=RETENTION,
        secret="s3cret", settings=RedisSettings(max_connections=6, warm_connections=4))
    try:
        await st.start()
        clients = (await raw.client_list())
        assert len(clients) == 1 + 4 + 1  # raw's own connection, the 4 warmed, the hot path's multiplexed one
        assert await st.warm() == 4  # already open: warming again opens nothing more
        assert len(await raw.client_list()) == 6
    finally:
        await st.close()


def _sockets() -> int:
    """Open sockets of this process."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return n


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc/self/fd")
async def test_close_closes_the_pooled_connections(server: RedisServer) -> None:
    """close() left the warmed pool's sockets open until the garbage collector found them (a gateway's
    connections to Redis outlived it; the socket-counting server tests failed at random after scrub's)."""
    before = _sockets()
    st = RedisState(server.url, secret="s3cret", settings=RedisSettings(warm_connections=4), retention=RETENTION)
    await st.start()
    assert _sockets() >= before + 4
    await st.close()
    assert _sockets() == before


async def test_a_call_dated_by_a_clock_42_days_ahead_prunes_no_attempt(store: RedisState) -> None:
    """What a count prunes is judged against the Redis server's clock: a gateway whose clock jumped 42 days ahead
    keeps the attempts a right clock still counts (before, the call's own time pruned them all, and a fifth call in
    30 days was allowed once the clock was right again)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(microsecond=0)
    for d in (4, 3, 2, 1):
        assert await store.record_attempt(PRO, KEY, now - timedelta(days=d))
    assert await store.record_attempt(PRO, KEY, now + timedelta(days=42))  # the jumped clock
    trip = await store.read_and_count(PRO, KEY + 1, now + timedelta(days=42), None, True)
    assert trip is not None
    kept = (await store.history(PRO, KEY)).attempts
    assert kept[:4] == tuple(now - timedelta(days=d) for d in (4, 3, 2, 1)), kept
    cap = Cap(4, now - timedelta(days=30))
    assert not await store.record_attempt(PRO, KEY, now, cap)  # back to the right time: the fifth is refused
