"""SIGHUP through a running ``dnc-gateway serve``: campaigns added or removed in the config file show in
``/metrics`` and on the live page under the names now configured, without a restart; a list file that no
longer loads shows as a failed reload everywhere while its previous version serves.

Calls come over FastAGI as Asterisk places them (they are what the page shows; ``/api/check`` dry runs are
in ``/metrics`` only). The gateway's own log line ``reload: …`` tells when a reload is complete: no sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.agi.fake_asterisk import call as agi_call
from tests.agi.fake_asterisk import env_block
from tests.conftest import write_sample
from tests.serving import ROOT, SERVE
from tests.state.redis_server import free_port

HANG_GUARD = 30.0  # only bounds a gateway that never answers; nothing here depends on timing

AUTUMN = """
[campaigns.autumn]
regime = "opposition"
lists = ["bloctel"]
caller_id = "0162000000"
check_hours = false
check_holidays = false
"""


class Served:
    """One ``serve`` subprocess: its stderr read line by line, its FastAGI and web ports."""

    def __init__(self, proc: asyncio.subprocess.Process, config: Path, agi: int, web: int) -> None:
        self.proc = proc
        self.config = config
        self.agi = agi
        self.base = f"http://127.0.0.1:{web}"
        self.log: list[str] = []
        self.calls = 0

    async def logged(self, text: str) -> str:
        """The next log line that contains ``text`` (the lines before it are kept for failure messages)."""
        assert self.proc.stderr is not None
        async with asyncio.timeout(HANG_GUARD):
            while line := (await self.proc.stderr.readline()).decode(errors="replace"):
                self.log.append(line)
                if text in line:
                    return line
        pytest.fail(f"serve exited ({self.proc.returncode}) before logging {text!r}:\n{''.join(self.log[-30:])}")

    async def reload(self, toml: str) -> None:
        self.config.write_text(toml)
        self.proc.send_signal(signal.SIGHUP)
        line = await self.logged("lists loaded")  # the reload's last step
        assert "reload: " in line and " 0 failed" in line, line
        assert not any("restart the gateway" in seen for seen in self.log), self.log

    async def check(self, number: str, campaign: str) -> str:
        self.calls += 1
        env = env_block(args=(number, campaign), channel=f"PJSIP/agent-{self.calls:08x}",
                        uniqueid=f"1795418477.{self.calls}")
        async with asyncio.timeout(HANG_GUARD):
            return (await agi_call("127.0.0.1", self.agi, env)).variables["DNC_VERDICT"]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    config = write_sample(tmp_path / "conf")
    agi, web = free_port(), free_port()
    # The ports in the file rather than --agi-listen/--web-listen: the reload compares the file's listen
    # addresses with the running ones, and warns about a change that needs a restart.
    text = config.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{agi}"', 1)
    config.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{web}"', 1))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVE, "--config", str(config), "--log-level", "INFO", "serve",
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    s = Served(proc, config, agi, web)
    try:
        await s.logged("dnc-gateway ready")
        yield s
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(HANG_GUARD):
                    await proc.communicate()
            except TimeoutError:
                proc.kill()
                await proc.wait()


def decisions(text: str) -> dict[str, float]:
    """``dnc_decisions_total`` summed by campaign label."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "dnc_decisions_total":
                out[s.labels["campaign"]] = out.get(s.labels["campaign"], 0.0) + s.value
    return out


async def get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as r:
        assert r.status == 200, (url, r.status)
        return await (r.json() if r.content_type == "application/json" else r.text())


async def next_event(stream: aiohttp.StreamReader) -> tuple[str, dict[str, Any]]:
    async with asyncio.timeout(HANG_GUARD):
        while True:
            block = (await stream.readuntil(b"\n\n")).decode()
            fields = dict(line.split(": ", 1) for line in block.strip().split("\n")
                          if ": " in line and not line.startswith(":"))
            if "event" in fields:
                return fields["event"], json.loads(fields["data"])


def campaigns_shown(summary: dict[str, Any]) -> set[str]:
    """Every campaign name the page's data carries: chart buckets, latest blocks, bypasses."""
    return ({row[0] for rows in summary["buckets"].values() for row in rows}
            | {item["campaign"] for item in summary["latest"]} | {b["campaign"] for b in summary["bypasses"]})


async def test_campaigns_follow_sighup_in_metrics_and_on_the_page(served: Served) -> None:
    toml = served.config.read_text()
    async with aiohttp.ClientSession() as http:
        # Before: a name the dialplan sends that no config has is "unknown", in metrics and on the page.
        assert await served.check("0612000001", "legacy") == "BLOCK"  # on the opposition list
        assert await served.check("0612000002", "autumn") == "BLOCK"  # unknown_campaign
        assert decisions(await get(http, served.base + "/metrics")) == {"legacy": 1, "unknown": 1}
        assert campaigns_shown(await get(http, served.base + "/api/summary")) == {"legacy", "unknown"}

        # autumn added to the file, SIGHUP: the next call for it is counted and shown under its name.
        toml += AUTUMN
        await served.reload(toml)
        assert await served.check("0612000003", "autumn") == "BLOCK"  # opposition_list (registry_stale if old)
        assert decisions(await get(http, served.base + "/metrics")) == {"legacy": 1, "unknown": 1, "autumn": 1}
        summary = await get(http, served.base + "/api/summary")
        assert campaigns_shown(summary) == {"legacy", "unknown", "autumn"}
        assert summary["latest"][0]["campaign"] == "autumn"

        # legacy removed, SIGHUP, with the page open: it gets a fresh summary where legacy is gone (its block
        # stays counted, as unknown); a later call for legacy is unknown in the metrics too.
        async with http.get(served.base + "/api/events") as events:
            event, first = await next_event(events.content)
            assert event == "summary" and "legacy" in campaigns_shown(first)
            start = toml.index("[campaigns.legacy]")
            await served.reload(toml[:start] + toml[toml.index("[campaigns.", start + 1):])
            event, pushed = await next_event(events.content)
            while event != "summary":  # skipping the ticks and status events sent meanwhile
                event, pushed = await next_event(events.content)
        assert campaigns_shown(pushed) == {"unknown", "autumn"}
        assert pushed["totals"] == first["totals"]
        summary = await get(http, served.base + "/api/summary")
        assert campaigns_shown(summary) == {"unknown", "autumn"}
        assert "legacy" not in json.dumps({k: summary[k] for k in ("buckets", "latest", "bypasses")})
        assert await served.check("0612000004", "legacy") == "BLOCK"  # unknown_campaign now
        # The series counted before the removal stay (a counter keeps what it counted); new calls are unknown.
        assert decisions(await get(http, served.base + "/metrics")) == {"legacy": 1, "unknown": 2, "autumn": 1}


async def test_a_list_file_deleted_then_sighup_shows_as_a_failed_reload(served: Served) -> None:
    """Issue 15 #8 as an operator tries it: the old version keeps serving, and /metrics, /healthz and the page's
    data all say that the last reload failed, until a SIGHUP with the file back."""
    bloctel = served.config.parent / "bloctel.txt"
    assert bloctel.is_file()
    kept = bloctel.read_bytes()
    bloctel.unlink()
    served.proc.send_signal(signal.SIGHUP)
    line = await served.logged("lists loaded")
    assert "1 failed" in line, line
    async with aiohttp.ClientSession() as http:
        assert await served.check("0612000001", "legacy") == "BLOCK"  # the previous version still serves
        async with http.get(served.base + "/healthz") as r:
            health = await r.json()
        assert r.status == 200 and health["status"] == "degraded" and health["ok"] is False
        assert "bloctel" in health["lists"]["reload_failed"] and "bloctel" in health["lists"]["loaded"]
        metrics = {(s.name, s.labels.get("list")): s.value
                   for f in text_string_to_metric_families(await get(http, served.base + "/metrics"))
                   for s in f.samples}
        assert metrics[("dnc_list_reload_failed", "bloctel")] == 1
        assert metrics[("dnc_list_loaded", "bloctel")] == 1
        assert ("dnc_list_last_reload_failure_timestamp_seconds", "bloctel") in metrics
        lists = {e["name"]: e for e in (await get(http, served.base + "/api/summary"))["lists"]}
        assert lists["bloctel"]["reload_failed"]["origin"] == "reload"

        bloctel.write_bytes(kept)
        await served.reload(served.config.read_text())
        health = await get(http, served.base + "/healthz")
        assert (health["status"], health["lists"]["reload_failed"]) == ("ok", {})


async def test_listen_addresses_from_the_command_line_survive_sighup(tmp_path: Path) -> None:
    """--agi-listen/--web-listen override the file: a SIGHUP reads the file again, keeps them, and does not log
    them as a change needing a restart (an operator reported that warning on every reload)."""
    config = write_sample(tmp_path / "conf")  # its listen addresses are 127.0.0.1:0
    agi, web = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVE, "--config", str(config), "--log-level", "INFO", "serve",
        "--agi-listen", f"127.0.0.1:{agi}", "--web-listen", f"127.0.0.1:{web}",
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    s = Served(proc, config, agi, web)
    try:
        await s.logged("dnc-gateway ready")
        await s.reload(config.read_text())  # asserts no "restart the gateway" line was logged
        assert await s.check("0612000001", "legacy") == "BLOCK"  # FastAGI still on the command line's port
        async with aiohttp.ClientSession() as http:
            assert (await get(http, s.base + "/healthz"))["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(HANG_GUARD):
            await proc.communicate()
