"""End to end through ``serve``'s wiring: calls played over FastAGI as Asterisk plays them move /metrics,
reach the live feed masked, and land in the audit that /api/audit returns."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import app
from gateway.config import parse
from tests.conftest import write_sample
from tests.web.conftest import TOKEN

fake = pytest.importorskip("tests.agi.fake_asterisk", reason="the FastAGI test double is not there yet")


def metric(text: str, name: str, **labels: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_calls_over_fastagi_reach_metrics_feed_and_audit(tmp_path: Path) -> None:
    path = write_sample(tmp_path / "conf", '\n[audit]\ndurable_allow = true\n')
    text = path.read_text().replace('state = "memory://"', 'state = "memory://"\naudit = "audit.db"')
    config = parse(text, str(path), base=path.parent)
    running = await app.start(config)
    try:
        web = f"http://{running.web.address}"
        agi_host, agi_port = running.agi.address.rsplit(":", 1)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{web}/metrics") as r:
                before = await r.text()
            events = await http.get(f"{web}/api/events")
            raw = await asyncio.wait_for(events.content.readuntil(b"\n\n"), 3)  # retry: line
            raw = await asyncio.wait_for(events.content.readuntil(b"\n\n"), 3)
            assert raw.startswith(b"event: summary")

            results = []
            for i, (number, campaign) in enumerate((("0612000001", "legacy"), ("0612000010", "legacy"),
                                                    ("0612000200", "survey"))):
                env = fake.env_block(args=(number, campaign), uniqueid=f"1795418477.{i}",
                                     channel=f"PJSIP/agent-0000000{i}")
                res = await fake.call(agi_host, int(agi_port), env)
                assert res.variables.get("DNC_VERDICT") in ("ALLOW", "BLOCK"), res
                results.append((campaign, res.variables))

            async with http.get(f"{web}/metrics") as r:
                after = await r.text()
            for campaign, v in results:
                reason = v.get("DNC_REASON") or "none"
                assert metric(after, "dnc_decisions_total", campaign=campaign, verdict=v["DNC_VERDICT"],
                              reason=reason, source="agi") == 1, (campaign, v)
            assert metric(after, "dnc_decisions_total") - metric(before, "dnc_decisions_total") == 3
            assert metric(after, "dnc_agi_session_seconds_count") >= 3
            assert metric(after, "dnc_agi_sessions_in_flight") == 0
            assert metric(after, "dnc_audit_up") == 1

            seen = b""
            while b"event: tick" not in seen:
                seen += await asyncio.wait_for(events.content.readuntil(b"\n\n"), 3)
            assert b"612000001" not in seen and b"612000200" not in seen
            events.close()

            first = results[0][1]["DNC_DECISION_ID"]
            async with asyncio.timeout(5):  # BLOCK records are committed in the background
                while running.audit.stats()["records_written"] < 3:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            async with http.get(f"{web}/api/audit", params={"number": "+33612000001"},
                                headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                body: dict[str, Any] = await r.json()
            assert r.status == 200, body
            assert [rec["decision_id"] for rec in body["records"]] == [first]
            assert body["records"][0]["channel"] == "PJSIP/agent-00000000"
            assert json.dumps(body)  # plain JSON all the way
    finally:
        await running.close()
