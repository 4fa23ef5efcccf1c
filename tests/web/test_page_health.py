"""The supervisor page's reason x campaign table and its health panel, in a real headless Chromium.

The faults are real: FastAGI errors come from garbage written to a real FastAGI listener, the call-history
store is a real redis-server that is stopped, and the audit log is a real SQLite audit trail whose file can no
longer grow (the "disk full" of tests/audit/test_writer.py). Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.agi.server import AgiServer
from gateway.audit import AuditLog
from gateway.config import AuditSection, Config
from tests.state.redis_server import RedisServer
from tests.web.conftest import Served, serve
from tests.web.test_page import ARTIFACTS, CHROMIUM, open_page

async_api = pytest.importorskip("playwright.async_api", reason="playwright (test extra) is not installed")
expect = async_api.expect
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    async with async_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def cells(page: Any) -> dict[str, dict[str, str]]:
    """The reason x campaign table as ``{reason: {campaign: text}}`` (the Total column included)."""
    heads = await page.locator("#matrix thead th").all_text_contents()
    rows = {}
    for row in await page.locator("#matrix tbody tr").all():
        texts = await row.locator("td").all_inner_texts()
        rows[texts[0].strip()] = dict(zip(heads[1:], (t.strip() for t in texts[1:]), strict=True))
    return rows


async def test_blocks_by_reason_and_campaign_in_one_table(served: Served, chromium: Any) -> None:
    page, problems = await open_page(chromium, served.url("/"))
    await expect(page.locator("#matrix-empty")).to_be_visible()
    gw = served.gateway
    for number, campaign in (("0612000001", "legacy"), ("0612000002", "legacy"), ("0612000003", "prospect"),
                             ("0612000200", "legacy"), ("0612000200", "survey"), ("0612000011", "legacy")):
        await gw.check(number, campaign)
    await expect(page.locator("#matrix tbody tr")).to_have_count(3, timeout=5000)
    # Reasons in precedence order; campaigns by volume; the monitor campaign's would-block apart (+1).
    assert await cells(page) == {
        "opposition_list": {"legacy": "2", "prospect": "0", "survey": "0", "Total": "2"},
        "no_consent": {"legacy": "0", "prospect": "1", "survey": "0", "Total": "1"},
        "internal_dnc": {"legacy": "1", "prospect": "0", "survey": "0+1", "Total": "1+1"},
    }
    assert await page.locator("#matrix thead th").all_text_contents() == ["Reason", "legacy", "prospect", "survey",
                                                                        "Total"]
    assert [t.strip() for t in await page.locator("#matrix tfoot td").all_inner_texts()] == [
        "Total", "3", "1", "0+1", "4+1"]
    await expect(page.locator("#matrix-empty")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.locator(".matrix-panel").screenshot(path=str(ARTIFACTS / "supervisor-matrix.png"))
    assert problems == []


async def test_health_panel_shows_fastagi_errors_the_store_and_the_audit(
        sample_config: Config, clock: Callable[[], datetime], tmp_path: Path, chromium: Any) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    config = replace(sample_config, gateway=replace(sample_config.gateway, state=redis.url))
    audit = AuditLog(tmp_path / "audit.db", AuditSection(group_commit_ms=1.0))
    await audit.start()
    running, web = await serve(config, clock, audit=audit, live_interval=0.05, status_every=0.1)
    agi = AgiServer(running.gateway, config.agi, metrics=running.metrics)
    await agi.start()
    try:
        page, problems = await open_page(chromium, f"http://{web.address}/")
        fastagi, store, trail = (page.locator(f"#health-{k}") for k in ("fastagi", "state", "audit"))
        await expect(fastagi).to_have_class("health-row ok", timeout=5000)
        await expect(store).to_contain_text("redis · up")
        await expect(trail).to_contain_text("writing")
        await expect(trail).to_contain_text("queue 0 · 0 failures since start")
        assert await running.gateway.check("0612000010", "legacy")  # recorded in the audit

        # FastAGI: a peer that writes garbage instead of an AGI environment, three times.
        for _ in range(3):
            _, writer = await asyncio.open_connection("127.0.0.1", agi.port)
            writer.write(b"\x00\x01 not an AGI environment\n\n")
            await writer.drain()
            writer.close()
        await expect(fastagi).to_have_class("health-row warn", timeout=5000)
        await expect(fastagi).to_contain_text("3 errors in 10 min")
        await expect(page.locator("#alerts")).to_contain_text("FastAGI: 3 errors in the last 10 minutes")

        # The call-history store goes away: the next call that needs it fails, the page says so in red.
        redis.stop()
        outcome = await running.gateway.check("0612000012", "legacy")
        assert outcome.decision.reason == "state_unavailable"
        await expect(store).to_have_class("health-row bad", timeout=5000)
        await expect(store).to_contain_text("redis · DOWN")
        await expect(page.locator("#alerts")).to_contain_text("Call-history store (redis) unavailable")

        # The audit file can no longer grow (disk full): commits fail, the page says the trail is not writing.
        pages = await audit.run_in_writer(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
        await audit.run_in_writer(lambda c: c.execute(f"PRAGMA max_page_count = {pages}").fetchone())
        for i in range(400):
            await running.gateway.check(f"06120001{i % 21:02d}", "legacy")  # customers: allowed, no history
            if audit.stats()["failures"]:
                break
        await expect(trail).to_have_class("health-row bad", timeout=5000)
        await expect(trail).to_contain_text("NOT WRITING")
        await expect(page.locator("#alerts")).to_contain_text("Audit log not writing")
        metrics = running.metrics
        assert metrics is not None
        text = metrics.exposition().decode()
        assert "dnc_audit_failures_total 0.0" not in text and "dnc_audit_failures_total" in text
        assert "dnc_state_up 0.0" in text
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "supervisor-health.png"), full_page=True)
        body = await page.locator("body").inner_text()
        assert "0612000012" not in body and "612000012" not in body
        assert problems == []
        await audit.run_in_writer(lambda c: c.execute("PRAGMA max_page_count = 1073741823").fetchone())
    finally:
        await agi.drain_and_close(1.0)
        await web.close()
        await running.gateway.close()
        await audit.close()
        redis.stop()
