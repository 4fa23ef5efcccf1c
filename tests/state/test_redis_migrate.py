"""The key layout of issue 17 in Redis (short digests, stamps with integer members) and the one-shot conversion of a
history written in the layout before it (``python -m gateway.state.redis_migrate``), against a real redis-server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from gateway import cli
from gateway.state import redis_migrate
from gateway.state.model import Cap, Counted, StateUnavailable, stamp
from gateway.state.redis_store import KeyScheme, RedisState
from tests.conftest import FIXED_NOW
from tests.state.helpers import RETENTION
from tests.state.redis_cluster import ClusterSet
from tests.state.redis_server import RedisServer

PRO = "acme"
SECRET = b"s3cret"
KEY = 33612000010
MS = int(FIXED_NOW.timestamp() * 1000)
DAY_MS = 86_400_000


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisState]:
    st = RedisState(server.url, secret=SECRET.decode(), retention=RETENTION)
    await st.start()
    yield st
    await st.close()


def old_names(key: int, *, tagged: bool = False) -> dict[str, str]:
    """The layout-1 key names of a number (32 hex characters of the HMAC), as gateways before issue 17 wrote them."""
    d = hmac.new(SECRET, str(key).encode(), hashlib.sha256).hexdigest()[:32]
    d = f"{{{d}}}" if tagged else d
    return {kind: f"dncgw:{PRO}:{kind}:{d}" for kind in "aroc"}


async def write_old_layout(raw: aioredis.Redis) -> None:
    scheme = KeyScheme(PRO, SECRET)
    await raw.set(scheme.keyid, scheme.fingerprint)  # layout 1: the fingerprint alone
    for key, tagged in ((KEY, False), (KEY + 1, True)):
        names = old_names(key, tagged=tagged)
        # three attempts, two of them in one second (text members, epoch-ms scores), with 20 days to live
        await raw.zadd(names["a"], {b"%d:81:%d" % (MS - DAY_MS, 1): MS - DAY_MS, b"%d:81:2" % MS: MS,
                                    b"%d:99:7" % (MS + 250): MS + 250})
        await raw.pexpire(names["a"], 20 * DAY_MS)
        await raw.set(names["r"], MS - 2 * DAY_MS, px=900 * DAY_MS)
        await raw.set(names["o"], MS - 3 * DAY_MS)
        await raw.set(names["c"], MS - 4 * DAY_MS, px=800 * DAY_MS)


async def test_an_attempt_is_held_as_integers_and_two_in_one_second_get_two_members(
        store: RedisState, raw: aioredis.Redis) -> None:
    scheme = store.scheme(PRO)
    assert len(scheme.digest(KEY)) == 22 and scheme.digest(KEY) != KeyScheme(PRO, b"other").digest(KEY)
    cap = Cap(4, FIXED_NOW - timedelta(days=30))
    first = await store.read_and_count(PRO, KEY, FIXED_NOW, cap, True)
    second = await store.read_and_count(PRO, KEY, FIXED_NOW + timedelta(milliseconds=400), cap, True)
    assert (first.counted, second.counted) == (Counted.COUNTED, Counted.COUNTED)
    t = stamp(FIXED_NOW)
    assert (first.member, second.member) == (b"%d" % t, b"%d" % (t + 1))  # the next free integer
    name = scheme.attempts(KEY)
    assert await raw.zrange(name, 0, -1, withscores=True) == [(b"%d" % t, t), (b"%d" % (t + 1), t + 1)]
    assert await raw.object("encoding", name) == b"listpack"
    assert second.history.attempts == (FIXED_NOW,)
    await store.forget_attempt(PRO, KEY, first.member)  # takes back that one, not the other
    assert await raw.zrange(name, 0, -1) == [b"%d" % (t + 1)]
    assert (await store.history(PRO, KEY)).attempts == (FIXED_NOW + timedelta(seconds=1),)  # rounded up


async def test_every_key_expires_with_the_window_that_needs_it_but_opt_outs(
        store: RedisState, raw: aioredis.Redis) -> None:
    await store.record_attempt(PRO, KEY, FIXED_NOW)
    await store.record_refusal(PRO, KEY, FIXED_NOW)
    await store.record_consent(PRO, KEY, FIXED_NOW - timedelta(days=1))
    await store.record_optout(PRO, KEY, FIXED_NOW)
    s = store.scheme(PRO)
    assert timedelta(milliseconds=await raw.pttl(s.attempts(KEY))) <= RETENTION.attempts
    for name in (s.refusal(KEY), s.consent(KEY)):
        ttl = timedelta(milliseconds=await raw.pttl(name))
        assert RETENTION.kept_refusals - timedelta(minutes=1) < ttl <= RETENTION.kept_refusals
    assert await raw.pttl(s.optout(KEY)) == -1  # an expired opt-out would let a call through
    assert await raw.get(s.keyid) == f"{s.fingerprint}:2".encode()


async def test_a_history_in_the_old_layout_is_refused_until_converted_then_read_whole(
        server: RedisServer, raw: aioredis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    await write_old_layout(raw)
    st = RedisState(server.url, secret=SECRET.decode(), retention=RETENTION)
    await st.start()
    try:
        with pytest.raises(StateUnavailable, match="redis_migrate"):  # fail closed: never an empty history
            await st.history(PRO, KEY)
        # the command, as run by hand
        assert await asyncio.to_thread(cli.main, ["state", "migrate", server.url]) == 0
        assert "converted 2 attempt, 2 refusal, 2 opt-out and 2 consent keys of 1 professionals" in \
            capsys.readouterr().out
        assert await redis_migrate.migrate(server.url) == {"professionals": 0}  # a second run: nothing left
        assert not [k for k in await raw.keys("*") if redis_migrate.new_name(k) is not None]
        h = await st.history(PRO, KEY)
        assert h.attempts == (FIXED_NOW - timedelta(days=1), FIXED_NOW, FIXED_NOW + timedelta(seconds=1))
        assert h.last_refusal == FIXED_NOW - timedelta(days=2)
        assert h.opted_out_at == FIXED_NOW - timedelta(days=3)
        assert h.consent_at == FIXED_NOW - timedelta(days=4)
        # the untagged names and the Cluster's (a hash tag) alike, with their remaining TTLs
        for key, scheme in ((KEY, st.scheme(PRO)), (KEY + 1, KeyScheme(PRO, SECRET, tagged=True))):
            t = stamp(FIXED_NOW)  # the two attempts of one second: members t and t + 1 (the second is 250 ms later)
            assert await raw.zrange(scheme.attempts(key), 0, -1, withscores=True) == [
                (b"%d" % (t - 86400), t - 86400), (b"%d" % t, t), (b"%d" % (t + 1), t + 1)]
            assert 19 * DAY_MS < await raw.pttl(scheme.attempts(key)) <= 20 * DAY_MS  # the remaining retention
            assert 899 * DAY_MS < await raw.pttl(scheme.refusal(key)) <= 900 * DAY_MS
            assert 799 * DAY_MS < await raw.pttl(scheme.consent(key)) <= 800 * DAY_MS
            assert await raw.pttl(scheme.optout(key)) == -1
        # counting goes on under the new names
        trip = await st.read_and_count(PRO, KEY, FIXED_NOW + timedelta(hours=1), Cap(4, FIXED_NOW), True)
        assert trip.counted is Counted.NOT_TRIED  # the converted opt-out is there: the decision blocks
    finally:
        await st.close()


def test_an_attempt_key_converts_to_the_same_entries_every_time() -> None:
    entries = [(b"x", float(MS + 250)), (b"y", float(MS)), (b"z", float(MS + 999))]
    t = stamp(FIXED_NOW)
    assert redis_migrate.converted(entries) == {str(t): t, str(t + 1): t + 1, str(t + 2): t + 1}
    assert redis_migrate.converted(entries[::-1]) == redis_migrate.converted(entries)
    assert redis_migrate.new_name(b"dncgw:acme:keyid") is None
    assert redis_migrate.new_name(b"dncgw:acme:a:" + KeyScheme(PRO, SECRET).digest(KEY).encode()) is None


async def test_a_cluster_is_converted_too(tmp_path: Path) -> None:
    """Old and new names of a number hash to different slots: the conversion copies across nodes (no RENAME)."""
    cluster = ClusterSet(tmp_path / "cluster")
    cluster.start()
    try:
        raw = RedisCluster(host="127.0.0.1", port=cluster.ports[0])
        scheme = KeyScheme(PRO, SECRET, tagged=True)
        await raw.set(scheme.keyid, scheme.fingerprint)
        keys = [KEY + i for i in range(40)]  # over every primary
        for key in keys:
            names = old_names(key, tagged=True)
            await raw.zadd(names["a"], {b"m1": MS, b"m2": MS - DAY_MS})
            await raw.pexpire(names["a"], 20 * DAY_MS)
            await raw.set(names["o"], MS)
        assert await redis_migrate.migrate(cluster.url) == {"a": 40, "o": 40, "professionals": 1}
        st = RedisState(cluster.url, secret=SECRET.decode(), retention=RETENTION)
        try:
            for key in keys:
                h = await st.history(PRO, key)
                assert h.attempts == (FIXED_NOW - timedelta(days=1), FIXED_NOW) and h.opted_out_at == FIXED_NOW
        finally:
            await st.close()
        assert sum(cluster.keys().values()) == 81  # 40 numbers' two keys and keyid: no old name left
        await raw.aclose()
    finally:
        cluster.stop()
