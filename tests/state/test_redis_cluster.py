"""The Redis Cluster backend (issue 16): a real three-primary cluster, two gateways, one script per call.

Each number's keys are hash-tagged into one slot (the script's keys must share a node); numbers spread over the
primaries; the cap holds across two gateways calling one number at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.policy.decision import Reason, Verdict
from gateway.service import Gateway
from gateway.state.model import RedisSettings
from gateway.state.redis_store import RedisState
from tests.conftest import FIXED_NOW
from tests.state.helpers import RETENTION
from tests.state.redis_cluster import ClusterSet


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    c = ClusterSet(tmp_path / "cluster")
    c.start()
    yield c
    c.stop()


def gateway(config: Config, url: str) -> Gateway:
    cfg = replace(config, gateway=replace(config.gateway, state=url, professional="acme"))
    gw = Gateway(cfg, state=RedisState(url, retention=RETENTION, secret="s3cret", settings=RedisSettings()),
                 clock=lambda: FIXED_NOW)
    gw.holder.load_all()
    return gw


async def test_two_gateways_on_a_cluster_hold_the_cap_and_spread_the_numbers(sample_config: Config,
                                                                            cluster: ClusterSet) -> None:
    gws = [gateway(sample_config, cluster.url) for _ in range(2)]
    for gw in gws:
        await gw.start()
    try:
        # 24 calls at once to one number, alternating between the gateways: exactly 4 allowed.
        got = Counter([(d.verdict, d.reason) for d in [o.decision for o in await asyncio.gather(
            *(gws[i % 2].check("0613000001", "legacy") for i in range(24)))]])
        assert got == {(Verdict.ALLOW, None): 4, (Verdict.BLOCK, Reason.FREQUENCY_CAP): 20}
        for i in range(60):  # many numbers: their keys land on every primary
            assert (await gws[i % 2].check(f"06131{i:05d}", "legacy")).decision.verdict is Verdict.ALLOW
        # Refusals, opt-outs and history reads go through the cluster too.
        await gws[0].refusal("0613100000", now=FIXED_NOW - timedelta(days=1))
        d = (await gws[1].check("0613100000", "legacy")).decision
        assert d.reason is Reason.REFUSAL_COOLDOWN
        state = gws[1].state
        assert isinstance(state, RedisState)
        found = await state.histories("acme", [33613100000 + i for i in range(60)])
        assert len(found) == 60
    finally:
        for gw in gws:
            await gw.close()
    spread = cluster.keys()
    assert all(n > 0 for n in spread.values()), spread
