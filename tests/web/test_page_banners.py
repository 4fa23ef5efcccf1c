"""The live page's banners for what a reload refused: a list version held back by the shrink guard, and a
config file that did not validate. The old ones serve; the page says so in red until an operator acts."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.web.conftest import Served
from tests.web.test_page import browser, open_page  # noqa: F401  (the browser fixture)

NUMBERS = [f"0612{i:06d}" for i in range(100)]


async def test_page_shows_a_held_back_list_and_a_refused_config(served: Served, browser: Any) -> None:  # noqa: F811
    holder = served.gateway.holder
    path = holder.specs["bloctel"].path
    assert path is not None
    path.write_text("\n".join(NUMBERS) + "\n")
    assert (await holder.reload(["bloctel"])).ok
    page, problems = await open_page(browser, served.url("/"))

    path.write_text("\n".join(NUMBERS[:10]) + "\n")  # a copy cut short
    assert not (await holder.reload(["bloctel"])).ok
    alerts = page.locator("#alerts")
    await expect(alerts).to_contain_text("List bloctel: new version refused, it drops 90 of 100 numbers",
                                         timeout=5000)
    await expect(alerts).to_contain_text("dnc-gateway registry accept bloctel")

    served.running._config_refused("gateway.toml:3: [campaigns.x] lists: no list named 'blocktel'")
    await expect(alerts).to_contain_text("Config reload refused", timeout=5000)
    await expect(alerts).to_contain_text("no list named 'blocktel'")

    async with holder._lock:
        holder.accept("bloctel")
    served.running._config_refused(None)
    await expect(alerts).not_to_contain_text("new version refused", timeout=5000)
    await expect(alerts).not_to_contain_text("Config reload refused")
    assert not problems, problems
