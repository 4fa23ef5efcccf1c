"""``GET /api/proof``: admin only (401/403), the dossier as JSON, and as a page read in a real headless Chromium.

The page is opened as a browser opens the route, screen and print media are captured to tests/artifacts/
(proof.png, proof-print.png) for people to look at, and nothing outside the page may be fetched.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config import load
from tests.web.conftest import TOKEN, Served, serve

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def served_history(history: tuple[Path, list[str]]) -> AsyncIterator[tuple[Served, list[str]]]:
    conf, ids = history
    running, web = await serve(load(conf), lambda: NOW)
    async with aiohttp.ClientSession() as session:
        yield Served(running, web, session), ids
    await web.close()
    await running.gateway.close()


async def test_admin_only(served_history: tuple[Served, list[str]]) -> None:
    served, _ = served_history
    for headers, status in (({}, 401), ({"Authorization": "Bearer nope"}, 403)):
        async with served.http.get(served.url("/api/proof?number=0612000010"), headers=headers) as r:
            assert r.status == status and "admin route" in (await r.json())["error"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for query, field in (("", "number"), ("?number=0612000010&format=pdf", "format"),
                         ("?number=0612000010&since=2026-10-01", "since"), ("?number=112", "number"),
                         ("?number=0612000010&campain=x", "campain")):
        async with served.http.get(served.url("/api/proof" + query), headers=auth) as r:
            assert r.status == 400 and (await r.json())["field"] == field, query


async def test_json_and_period(served_history: tuple[Served, list[str]]) -> None:
    served, ids = served_history
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with served.http.get(served.url("/api/proof"), params={"number": "+33 6 12 00 00 10"}, headers=auth) as r:
        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
        body = await r.json()
    assert body["schema"] == "dnc-gateway/proof-dossier/1" and body["number"] == "+33612000010"
    assert [x["decision_id"] for x in body["decisions"]] == ids
    assert body["generated_at"] == "2026-11-25T09:00:00+00:00"
    params = {"number": "0612000010", "since": "2026-11-01T00:00:00+01:00", "until": "2026-11-30T00:00:00+01:00"}
    async with served.http.get(served.url("/api/proof"), params=params, headers=auth) as r:
        assert [x["decision_id"] for x in (await r.json())["decisions"]] == ids[8:]


async def test_page_in_chromium(served_history: tuple[Served, list[str]]) -> None:
    async_api = pytest.importorskip("playwright.async_api", reason="playwright (test extra) is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    served, ids = served_history
    async with async_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                                extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
            page = await context.new_page()
            problems: list[str] = []
            requests: list[str] = []
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}"))
            page.on("request", lambda r: requests.append(r.url))
            response = await page.goto(served.url("/api/proof?number=0612000010&format=html"))
            assert response is not None and response.status == 200
            assert "default-src 'none'" in (await response.all_headers())["content-security-policy"]
            expect = async_api.expect
            await expect(page.locator("h1")).to_contain_text("Proof dossier — +33612000010")
            await expect(page.locator("section[lang=en] li").first).to_contain_text("10 calls to +33612000010")
            await expect(page.locator("section[lang=fr] li").first).to_contain_text("10 appels vers +33612000010")
            rows = page.locator("table").filter(has_text="decision id").locator("tbody tr")
            await expect(rows).to_have_count(10)
            text = await page.locator("body").inner_text()
            assert all(i in text for i in ids)
            assert "shown in full" in text
            # Laid out for a person: nothing wider than the window, the summary in two columns side by side.
            overflow: Any = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
            assert overflow is False
            boxes = [await page.locator(f"section[lang={lang}]").bounding_box() for lang in ("en", "fr")]
            assert boxes[0] and boxes[1] and abs(boxes[0]["y"] - boxes[1]["y"]) < 1 and boxes[0]["x"] < boxes[1]["x"]
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "proof.png"), full_page=True)
            await page.emulate_media(media="print")
            await page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
            overflow = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
            assert overflow is False
            await page.screenshot(path=str(ARTIFACTS / "proof-print.png"), full_page=True)
            pdf = await page.pdf(format="A4")  # what "print" gives
            assert pdf.startswith(b"%PDF-") and len(pdf) > 10_000
            assert problems == []
            assert requests == [served.url("/api/proof?number=0612000010&format=html")]  # nothing else fetched
        finally:
            await browser.close()
