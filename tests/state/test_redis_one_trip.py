"""One Redis round trip per call (issue 16): the history read and the attempt counted by one script.

Against a real redis-server; the round trips are counted by Redis itself (INFO commandstats).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from gateway.config import Config
from gateway.policy.decision import Decision, Reason, Verdict
from gateway.policy.engine import Call, Engine
from gateway.registry.model import Registries
from gateway.service import Gateway
from gateway.state.model import Cap, Counted, History, RedisSettings
from gateway.state.redis_store import KeyScheme, RedisState
from gateway.state.redis_topology import Kind, parse
from tests.conftest import FIXED_NOW
from tests.state.helpers import RETENTION
from tests.state.redis_server import RedisServer

PRO = "acme"


@pytest.fixture
async def gw(sample_config: Config, server: RedisServer) -> AsyncIterator[Gateway]:
    cfg = replace(sample_config, gateway=replace(sample_config.gateway, state=server.url, professional=PRO))
    g = Gateway(cfg, state=RedisState(server.url, retention=RETENTION, secret="s3cret",
                                      settings=RedisSettings(warm_connections=1)), clock=lambda: FIXED_NOW)
    g.holder.load_all()
    await g.start()
    await g.check("0612000049", "prospect")  # the secret's fingerprint written: calls from here on are the calls
    yield g
    await g.close()


async def commands(raw: aioredis.Redis) -> dict[str, int]:
    """The gateway's commands Redis ran since the last call: only the top-level ones (commandstats also counts
    what scripts call, so the commands only a script sends, GET inside it included, are not told apart)."""
    stats = await raw.info("commandstats")
    await raw.config_resetstat()
    return {name: int(v["calls"]) for k, v in stats.items()
            if (name := k.removeprefix("cmdstat_")) in ("evalsha", "eval", "zrem")}


async def attempts(raw: aioredis.Redis, key: int) -> int:
    return int(await raw.zcard(KeyScheme(PRO, b"s3cret").attempts(key)))


async def test_a_call_is_one_round_trip_and_the_fifth_is_capped(gw: Gateway, raw: aioredis.Redis) -> None:
    await commands(raw)
    got = [(await gw.check("0612000010", "prospect")).decision for _ in range(6)]
    assert [d.verdict for d in got] == [Verdict.ALLOW] * 4 + [Verdict.BLOCK] * 2
    assert got[-1].reason is Reason.FREQUENCY_CAP
    assert await commands(raw) == {"evalsha": 6}  # one script per call, capped calls included
    assert await attempts(raw, 33612000010) == 4


async def test_a_blocked_call_is_read_in_one_trip_and_not_counted(gw: Gateway, raw: aioredis.Redis) -> None:
    await commands(raw)
    d = (await gw.check("0612000001", "legacy")).decision  # on the opposition list
    assert (d.verdict, d.reason) == (Verdict.BLOCK, Reason.OPPOSITION_LIST)
    assert await commands(raw) == {"evalsha": 1}
    assert await attempts(raw, 33612000001) == 0


async def test_an_old_refusal_counts_on_a_second_trip_and_a_recent_one_not_at_all(gw: Gateway,
                                                                                 raw: aioredis.Redis) -> None:
    # The script leaves the count to the decision when the number has a refusal: the cooldown may block it.
    await gw.refusal("0612000011", now=FIXED_NOW - timedelta(days=70))
    await gw.refusal("0612000012", now=FIXED_NOW - timedelta(days=10))
    await gw.refusal("0612000015", now=FIXED_NOW - timedelta(days=70))
    await gw.check("0612000015", "legacy")  # the first count of a second trip loads its script (NOSCRIPT, LOAD)
    await commands(raw)
    old = (await gw.check("0612000011", "legacy")).decision
    assert old.verdict is Verdict.ALLOW
    assert await commands(raw) == {"evalsha": 2}  # the read, then the check-and-count
    assert await attempts(raw, 33612000011) == 1
    recent = (await gw.check("0612000012", "legacy")).decision
    assert recent.reason is Reason.REFUSAL_COOLDOWN
    assert await commands(raw) == {"evalsha": 1}
    assert await attempts(raw, 33612000012) == 0


async def test_an_optout_is_never_counted(gw: Gateway, raw: aioredis.Redis) -> None:
    await gw.optout("0612000013")
    d = (await gw.check("0612000013", "prospect")).decision
    assert (d.verdict, d.reason) == (Verdict.BLOCK, Reason.INTERNAL_DNC)
    assert await attempts(raw, 33612000013) == 0


class SecondThoughts(Engine):
    """An engine whose decision on the real history refuses what the one on an empty history would count:
    the service must take the provisional count back."""

    def decide(self, call: Call, regs: Registries, history: History, now: datetime) -> Decision:
        d = super().decide(call, regs, history, now)
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls % 2 == 0:  # the second decision of each call
            return d._replace(verdict=Verdict.BLOCK, reason=Reason.OUTSIDE_HOURS, counts_attempt=False,
                              would_block=True)
        return d


async def test_a_provisional_count_the_decision_refuses_is_taken_back(gw: Gateway, raw: aioredis.Redis) -> None:
    e = gw.engine
    gw.engine = SecondThoughts(e.campaigns, e.pack_for, e.settings)
    await commands(raw)
    d = (await gw.check("0612000014", "prospect")).decision
    assert d.reason is Reason.OUTSIDE_HOURS
    assert await commands(raw) == {"evalsha": 1, "zrem": 1}
    assert await attempts(raw, 33612000014) == 0


async def test_read_and_count_reports_what_it_did(server: RedisServer) -> None:
    st = RedisState(server.url, retention=RETENTION, secret="s3cret")
    await st.start()
    try:
        cap = Cap(1, FIXED_NOW - timedelta(days=30))
        first = await st.read_and_count(PRO, 1, FIXED_NOW, cap, True)
        assert (first.history.attempts, first.counted) == ((), Counted.COUNTED)
        second = await st.read_and_count(PRO, 1, FIXED_NOW, cap, True)
        assert (second.history.attempts, second.counted) == ((FIXED_NOW,), Counted.CAP_REACHED)
        read = await st.read_and_count(PRO, 1, FIXED_NOW, None, False)
        assert read.counted is Counted.NOT_TRIED and len(read.history.attempts) == 1
        await st.forget_attempt(PRO, 1, first.member)
        assert (await st.history(PRO, 1)).attempts == ()
    finally:
        await st.close()


async def test_a_flushed_script_is_sent_whole(server: RedisServer, raw: aioredis.Redis) -> None:
    st = RedisState(server.url, retention=RETENTION, secret="s3cret")
    await st.start()
    try:
        await raw.script_flush()  # what a restarted Redis or a newly promoted replica looks like to the link
        assert (await st.read_and_count(PRO, 2, FIXED_NOW, None, True)).counted is Counted.COUNTED
    finally:
        await st.close()


# -- Cluster keys and URLs (no server needed) -----------------------------------------------------------------

def test_cluster_keys_of_one_number_share_a_slot() -> None:
    scheme = KeyScheme(PRO, b"s3cret", tagged=True)
    for key in (33612000010, 33700000001, 33142000000):
        keys = scheme.all_keys(key)
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
        assert all("{" in k and "33" not in k.split(":", 2)[2] for k in keys)  # still no number in a key
    # Untagged names elsewhere: a single server moved under Sentinels keeps its data.
    assert "{" not in KeyScheme(PRO, b"s3cret").attempts(33612000010)
    assert KeyScheme(PRO, b"s3cret").attempts(1).removeprefix(f"dncgw:{PRO}:a:") == \
        scheme.attempts(1).removeprefix(f"dncgw:{PRO}:a:").strip("{}")


@pytest.mark.parametrize(("url", "want"), [
    ("redis://:pw@10.0.0.1:6380/2", {"kind": Kind.SINGLE, "nodes": (("10.0.0.1", 6380),), "db": 2, "password": "pw"}),
    ("redis+sentinel://s1:26379,s2,s3:26380/mymaster/1?sentinel_password=x",
     {"kind": Kind.SENTINEL, "nodes": (("s1", 26379), ("s2", 26379), ("s3", 26380)), "service": "mymaster", "db": 1,
      "options": {"sentinel_password": "x"}}),
    ("redis+cluster://user:pw@c1:7000,c2:7001/",
     {"kind": Kind.CLUSTER, "nodes": (("c1", 7000), ("c2", 7001)), "username": "user", "password": "pw"}),
])
def test_state_urls(url: str, want: dict[str, Any]) -> None:
    topo = parse(url)
    assert {k: getattr(topo, k) for k in want} == want
    assert "pw" not in topo.safe


@pytest.mark.parametrize("url", ["redis+sentinel://s1:26379/", "redis+cluster://c1:7000/3", "redis://a:1,b:2/0",
                                 "memcached://x", "redis+sentinel:///mymaster/0"])
def test_bad_state_urls_say_why(url: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse(url)
