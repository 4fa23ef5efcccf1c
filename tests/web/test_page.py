"""The supervisor page in a real headless Chromium: it loads, follows the SSE feed and updates without reload.

Calls are driven through ``Gateway.check`` on the server's own loop (the path FastAGI takes), spread over
the last half hour so the chart has something to draw; the screenshot is kept as
tests/artifacts/supervisor.png for people to look at.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.ami.events import BypassKind, BypassRecord
from gateway.config import Config
from gateway.policy.decision import Reason
from tests.conftest import FIXED_NOW
from tests.web.conftest import Served, serve

async_api = pytest.importorskip("playwright.async_api", reason="playwright (test extra) is not installed")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian chromium is not installed (apt-get install chromium)", allow_module_level=True)

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
expect = async_api.expect


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with async_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def open_page(browser: Any, url: str, width: int = 1440, height: int = 900) -> tuple[Any, list[str]]:
    page = await browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}")
            if "/api/events" not in r.url else None)
    await page.goto(url)
    await expect(page.locator("#conn-state")).to_have_text("live", timeout=5000)
    return page, problems


async def test_page_counts_calls_live(served: Served, browser: Any) -> None:
    page, problems = await open_page(browser, served.url("/"))
    await expect(page.locator("#kpi-blocked-hour")).to_have_text("0")
    await expect(page.locator("#lists li")).to_have_count(len(served.gateway.config.lists))
    await expect(page.locator("#latest-empty")).to_be_visible()
    await page.evaluate("window.__sameDocument = true")  # survives only if the page never reloads

    gw = served.gateway
    await gw.check("0612000001", "legacy")  # opposition list
    await gw.check("0612000010", "legacy")  # allowed
    await expect(page.locator("#kpi-blocked-hour")).to_have_text("1", timeout=5000)
    await expect(page.locator("#kpi-decisions")).to_have_text("2")
    await expect(page.locator("#latest tbody tr")).to_have_count(1)
    first = page.locator("#latest tbody tr").first
    await expect(first).to_contain_text("+3361•••••01")
    await expect(first).to_contain_text("opposition_list")

    # A realistic half hour: blocks of several reasons and campaigns, monitor would-blocks, allowed calls.
    calls = [("0612000002", "legacy"), ("0612000003", "prospect"), ("0612000200", "legacy"),
             ("0612000300", "prospect"), ("0899123456", "legacy"), ("0612000060", "prospect"),
             ("0612000200", "survey"), ("0612000011", "legacy"), ("0612000012", "prospect")]
    blocked = 1
    for minute in range(30, 0, -1):
        for i in range(minute % 4 + 1):
            number, campaign = calls[(minute + i) % len(calls)]
            o = await gw.check(number, campaign, now=FIXED_NOW - timedelta(minutes=minute, seconds=i))
            blocked += o.decision.verdict == "BLOCK"
    await expect(page.locator("#kpi-blocked-hour")).to_have_text(str(blocked), timeout=5000)
    await expect(page.locator("#kpi-would-block")).not_to_have_text("0")
    await expect(page.locator("#latest tbody tr")).to_have_count(50)
    assert await page.evaluate("window.__sameDocument") is True

    text = await page.locator("body").inner_text()
    for raw in ("0612000001", "612000001", "+33612000001"):
        assert raw not in text
    # The chart drew bars: some canvas pixels are not background.
    painted = await page.evaluate("""() => {
        const c = document.getElementById('chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] && (d[i] > 120 || d[i + 2] > 120)) n++;
        return n;
    }""")
    assert painted > 500
    await page.click("#by-campaign")
    await expect(page.locator("#legend")).to_contain_text("prospect")
    await page.click("#by-reason")
    await expect(page.locator("#legend")).to_contain_text("opposition_list")

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "supervisor.png"), full_page=True)
    await page.set_viewport_size({"width": 2560, "height": 1440})  # a wall screen
    await page.screenshot(path=str(ARTIFACTS / "supervisor-wall.png"))
    await page.set_viewport_size({"width": 800, "height": 1000})  # a half-screen laptop window
    await page.screenshot(path=str(ARTIFACTS / "supervisor-narrow.png"), full_page=True)
    assert problems == []


async def test_page_follows_a_reload_of_the_campaigns(served: Served, browser: Any) -> None:
    page, problems = await open_page(browser, served.url("/"))
    await page.evaluate("window.__sameDocument = true")
    await page.click("#by-campaign")
    gw = served.gateway
    await gw.check("0612000001", "legacy")
    await gw.check("0612000200", "prospect")
    await expect(page.locator("#kpi-blocked-hour")).to_have_text("2", timeout=5000)
    await expect(page.locator("#legend")).to_contain_text("legacy")
    await expect(page.locator("#latest tbody tr").first).to_contain_text("prospect")

    # legacy removed by a reload: the open page gets a fresh summary and shows its block as unknown.
    config = gw.config
    served.web.reconfigure(replace(config, campaigns={k: v for k, v in config.campaigns.items() if k != "legacy"}))
    await expect(page.locator("#legend")).to_contain_text("unknown", timeout=5000)
    assert "legacy" not in await page.locator("body").inner_text()
    await expect(page.locator("#kpi-blocked-hour")).to_have_text("2")
    await expect(page.locator("#latest tbody tr")).to_have_count(2)
    assert await page.evaluate("window.__sameDocument") is True
    assert problems == []


async def test_latest_blocks_show_the_campaign_the_dialplan_sent_as_text(served: Served, browser: Any) -> None:
    """Issue 15 #9: a campaign name the config does not have shows next to "unknown", as text, masked."""
    page, problems = await open_page(browser, served.url("/"))
    await served.gateway.check("0612000001", "<i>Prospekt</i> 0612345678")
    row = page.locator("#latest tbody tr").first
    await expect(row).to_contain_text("unknown“<i>Prospekt</i> 0612••••78”", timeout=5000)
    assert await page.locator("#latest tbody i").count() == 0  # not read as HTML
    assert "0612345678" not in await page.locator("body").inner_text()
    await expect(page.locator("#legend")).not_to_contain_text("Prospekt")  # the chart counts "unknown"
    assert problems == []


# Every reason the page can show: the blocking ones, in precedence order (a would-block has one of them too).
BLOCKING = list(Reason)[list(Reason).index(Reason.INVALID_NUMBER):]


async def test_every_reason_has_its_own_colour_and_the_legend_keeps_reason_order(served: Served, browser: Any
                                                                                    ) -> None:
    """Issue 15 #13: no two reasons share a colour (computed styles, chart legend and latest blocks alike), and the
    legend lists reasons in precedence order whatever their volumes."""
    page, problems = await open_page(browser, served.url("/"))
    base = await served.gateway.check("0612000001", "legacy")
    assert base.decision.reason is Reason.OPPOSITION_LIST
    # Reasons a test call cannot easily reach (store or audit down, a sector ban) are fed to the board as the
    # gateway would: the same outcome with another reason. Volumes rise against the precedence order.
    def block(reason: Reason, n: int) -> None:
        served.web.hub.decided(replace(base, decision=base.decision._replace(reason=reason, rule=str(reason)),
                                       decision_id=f"{reason}-{n}"), 0.0)

    for i, reason in enumerate(BLOCKING):
        for n in range(len(BLOCKING) - i):
            block(reason, n)
    for reason in BLOCKING:  # one more each, last: every reason among the 50 latest blocks
        block(reason, len(BLOCKING))
    legend = page.locator("#legend li[data-key]")
    await expect(legend).to_have_count(len(BLOCKING), timeout=5000)
    assert await legend.evaluate_all("els => els.map(e => e.dataset.key)") == [str(r) for r in BLOCKING]
    swatches = await page.locator("#legend li[data-key] .swatch").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(swatches)) == len(BLOCKING), swatches

    await expect(page.locator("#latest tbody tr")).to_have_count(50)
    tags = await page.locator("#latest .tag-reason").evaluate_all(
        "els => els.map(e => [e.textContent, getComputedStyle(e).backgroundColor])")
    colour_of = dict(tags)
    assert set(colour_of) == {str(r) for r in BLOCKING}  # 50 latest: every reason is among them
    assert len(set(colour_of.values())) == len(BLOCKING), colour_of
    assert colour_of == dict(zip([str(r) for r in BLOCKING], swatches, strict=True))  # the same on both
    await page.screenshot(path="/tmp/f15-reasons.png", full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "supervisor-reasons.png"), full_page=True)
    assert problems == []


async def test_page_warns_about_ageing_lists_and_bypasses(sample_config: Config, browser: Any) -> None:
    now = [FIXED_NOW + timedelta(days=21)]  # bloctel (as of 2026-11-20, max 30 days) is 25 days old
    clock: Callable[[], datetime] = lambda: now[0]  # noqa: E731
    ami = _watcher(sample_config)
    running, web = await serve(sample_config, clock, ami=ami, live_interval=0.05, status_every=0.1)
    try:
        page, problems = await open_page(browser, f"http://{web.address}/")
        await expect(page.locator("#lists li[data-list=bloctel]")).to_have_class("warn")
        await expect(page.locator("#alerts")).to_contain_text("bloctel is 25 days old")
        await expect(page.locator("#ami-state")).to_have_text("disconnected")
        now[0] = FIXED_NOW + timedelta(days=27)  # 31 days: past the maximum, without any reload
        await expect(page.locator("#lists li[data-list=bloctel]")).to_have_class("stale", timeout=5000)
        await expect(page.locator("#alerts")).to_contain_text("past its maximum age")
        ami.connected = True
        # Unmasked on purpose (the watcher masks them): the page masks again before a browser sees them.
        ami.recent_bypasses.append(BypassRecord(clock().timestamp(), BypassKind.NO_DECISION, "+33612000777",
                                                "Local/0612000777@outbound-00000001;1", "PJSIP/trunk-00000002",
                                                "prospect", "", False))
        await expect(page.locator("#ami-state")).to_have_text("connected", timeout=5000)
        await expect(page.locator("#bypasses li")).to_have_count(1)
        await expect(page.locator("#bypass-panel")).to_have_class("panel bypass-panel active")
        await expect(page.locator("#alerts")).to_contain_text("reached the trunk without a decision")
        assert "612000777" not in await page.locator("body").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "supervisor-alerts.png"), full_page=True)
        assert problems == []
    finally:
        await web.close()
        await running.gateway.close()


async def test_page_shows_a_failed_reload_in_red_until_one_succeeds(served: Served, browser: Any) -> None:
    """Issue 15 #8: the previous version serves (the list looks fresh), so the failure needs its own red line."""
    page, problems = await open_page(browser, served.url("/"))
    item = page.locator("#lists li[data-list=bloctel]")
    await expect(item).to_have_class("ok")
    path = served.gateway.config.lists["bloctel"].path
    assert path is not None
    good = path.read_text()
    path.write_text("garbage 0612345678 here\nand there\n")
    assert not (await served.gateway.holder.reload(["bloctel"])).ok
    line = item.locator(".failed")
    await expect(line).to_have_text(re.compile(r"^last reload failed at \d\d:\d\d: .*not numbers"), timeout=5000)
    await expect(item).to_have_class("ok reload-failed")  # still fresh: the old version is in service
    assert await line.evaluate("e => getComputedStyle(e).color") == "rgb(255, 123, 114)"
    await expect(page.locator("#alerts")).to_contain_text("the previous version")
    assert "0612345678" not in await page.locator("body").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "supervisor-reload-failed.png"), full_page=True)

    path.write_text(good)
    assert (await served.gateway.holder.reload(["bloctel"])).ok
    await expect(line).to_have_count(0, timeout=5000)
    await expect(item).to_have_class("ok")
    assert problems == []


def _watcher(config: Config) -> Any:
    """The real AMI watcher, not started: the page reads its public state (connected, recent_bypasses)."""
    watcher_mod = pytest.importorskip("gateway.ami.watcher", reason="the AMI watcher is not there yet")
    from gateway.config import AmiSection
    from gateway.service import Gateway

    return watcher_mod.AmiWatcher(Gateway(config), AmiSection())
