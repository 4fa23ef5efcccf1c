"""Lists that cannot slip a call through, on a real ``dnc-gateway serve``: a truncated copy, a file cut in the
middle of a line and a bad header are refused on SIGHUP (the previous version serves, every surface says so);
``dnc-gateway reload`` waits and exits 1; ``dnc-gateway registry accept`` puts a held-back version in service;
a refused config shows like a refused list. The gateway's own log lines tell when a reload is done: no sleeps.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import write_sample
from tests.serving import ROOT, SERVE
from tests.state.redis_server import free_port

HANG_GUARD = 60.0
NUMBERS = [f"0612{i:06d}" for i in range(1000)]
TOKEN = {"Authorization": "Bearer test-token"}


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, config: Path, web: int) -> None:
        self.proc, self.config = proc, config
        self.base = f"http://127.0.0.1:{web}"
        self.log: list[str] = []

    async def logged(self, text: str) -> str:
        assert self.proc.stderr is not None
        async with asyncio.timeout(HANG_GUARD):
            while line := (await self.proc.stderr.readline()).decode(errors="replace"):
                self.log.append(line)
                if text in line:
                    return line
        pytest.fail(f"serve exited ({self.proc.returncode}) before logging {text!r}:\n{''.join(self.log[-30:])}")

    async def sighup(self) -> str:
        self.proc.send_signal(signal.SIGHUP)
        return await self.logged("lists loaded")

    async def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A ``dnc-gateway`` command run beside the gateway (in a thread: the test's loop reads its log)."""
        cmd = [sys.executable, "-c", SERVE, "--config", str(self.config), *argv]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env,
                                       timeout=HANG_GUARD)

    async def get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as http, http.get(self.base + path) as r:
            return await (r.json() if r.content_type == "application/json" else r.text())

    async def verdict(self, number: str) -> str:
        """BLOCK when the number is on a list, else ALLOW (a weekday morning: hours do not decide)."""
        body = await self.get(f"/api/check?number={number}&campaign=legacy&at=2026-11-24T10:00:00%2B01:00")
        return "BLOCK" if body["reason"] in ("opposition_list", "internal_dnc") else "ALLOW"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    config = write_sample(tmp_path / "conf")
    (config.parent / "bloctel.txt").write_text("\n".join(NUMBERS) + "\n")
    agi, web = free_port(), free_port()
    text = config.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{agi}"', 1)
    config.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{web}"', 1))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVE, "--config", str(config), "--log-level", "INFO", "serve",
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    s = Served(proc, config, web)
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


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_a_truncated_list_is_held_back_until_accepted(served: Served) -> None:
    bloctel = served.config.parent / "bloctel.txt"
    dropped = NUMBERS[500]
    assert await served.verdict(dropped) == "BLOCK"

    bloctel.write_text("\n".join(NUMBERS[:200]) + "\n")  # a copy cut at its first 200 lines
    line = await served.sighup()
    assert "1 failed" in line, line
    assert await served.verdict(dropped) == "BLOCK"  # the previous version serves
    health = await served.get("/healthz")
    assert health["status"] == "degraded"
    assert health["lists_held_back"]["bloctel"]["dropped"] == 800
    assert "max_shrink" in health["lists"]["reload_failed"]["bloctel"]["error"]
    metrics = await served.get("/metrics")
    assert metric(metrics, 'dnc_list_held_back{list="bloctel"}') == 1.0
    assert metric(metrics, 'dnc_list_reload_failed{list="bloctel"}') == 1.0

    done = await served.cli("reload")  # what systemctl reload runs: it fails, and says why
    assert done.returncode == 1, done
    assert "list bloctel refused" in done.stdout and "max_shrink" in done.stdout

    done = await served.cli("registry", "accept", "bloctel")  # the operator says the short list is right
    assert done.returncode == 0, done
    assert await served.verdict(dropped) == "ALLOW"
    assert (await served.get("/healthz"))["status"] == "ok"
    assert metric(await served.get("/metrics"), 'dnc_list_held_back{list="bloctel"}') == 0.0
    done = await served.cli("registry", "accept", "bloctel")
    assert done.returncode == 1 and "nothing to accept" in done.stdout


async def test_a_file_cut_in_a_line_and_a_bad_header_are_that_lists_failure(served: Served) -> None:
    bloctel = served.config.parent / "bloctel.txt"
    company = served.config.parent / "company-dnc.txt"
    bloctel.write_text("\n".join([*NUMBERS, "0699000001"]) + "\n06990")  # all of it, then a line cut short
    company.write_text("0612000200\n0612000201\n")
    line = await served.sighup()
    assert "1 failed" in line, line
    health = await served.get("/healthz")
    assert "middle of line 1002" in health["lists"]["reload_failed"]["bloctel"]["error"]
    assert await served.verdict("0612000201") == "BLOCK"  # the other list reloaded on its own

    bloctel.write_text("# as_of: 2026-13-45\n" + "\n".join(NUMBERS) + "\n06²2000777\n")
    line = await served.sighup()
    assert "1 failed" in line, line
    health = await served.get("/healthz")
    assert "bad as-of date" in health["lists"]["reload_failed"]["bloctel"]["error"]
    assert served.proc.returncode is None

    bloctel.write_text("# as_of: 2026-11-20\n" + "\n".join(NUMBERS) + "\n06²2000777\n")  # one bad line: counted
    line = await served.sighup()
    assert "0 failed" in line, line
    health = await served.get("/healthz")
    assert health["status"] == "ok", health


async def test_a_refused_config_shows_everywhere_and_reload_exits_1(served: Served) -> None:
    good = served.config.read_text()
    served.config.write_text(good + "\n[campaigns.broken\n")
    done = await served.cli("reload")
    assert done.returncode == 1, done
    assert "config refused" in done.stdout
    health = await served.get("/healthz")
    assert health["status"] == "degraded" and health["config_reload_failed"]["count"] == 1
    assert metric(await served.get("/metrics"), "dnc_config_reload_failed") == 1.0
    status = await served.get("/api/summary")
    assert "config_reload_failed" in str(status) or health["config_reload_failed"]

    served.config.write_text(good)
    done = await served.cli("reload")
    assert done.returncode == 0, done
    assert (await served.get("/healthz"))["status"] == "ok"
    assert metric(await served.get("/metrics"), "dnc_config_reload_failed") == 0.0


def test_a_bad_header_at_start_is_that_lists_failure(tmp_path: Path) -> None:
    config = write_sample(tmp_path / "conf")
    (config.parent / "bloctel.txt").write_text("# as_of: 2026-02-30\n0612000001\n")
    done = subprocess.run([sys.executable, "-c", SERVE, "--config", str(config), "config", "check", "--json"],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert done.returncode == 2 and "bad as-of date" in done.stdout and "Traceback" not in done.stderr


async def test_url_secrets_show_nowhere(tmp_path: Path) -> None:
    """A list URL with a password and a query token that fails to fetch: /healthz, /api/summary, the live
    feed, the log and `config check` say it failed, and never show the secrets."""
    empty = tmp_path / "www"
    empty.mkdir()
    origin = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(empty)))
    threading.Thread(target=origin.serve_forever, daemon=True).start()  # a real server: 404 for the list
    url = f"http://bob:s3cret-pw@127.0.0.1:{origin.server_port}/bloctel.txt?token=T0KEN-XYZ"
    config = write_sample(tmp_path / "conf", f'\n[lists.remote]\nkind = "opposition"\nurl = "{url}"\n')
    agi, web = free_port(), free_port()
    text = config.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{agi}"', 1)
    config.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{web}"', 1))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVE, "--config", str(config), "--log-level", "INFO", "serve",
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    s = Served(proc, config, web)
    try:
        await s.logged("dnc-gateway ready")
        shown = [str(await s.get("/healthz")), str(await s.get("/api/summary"))]
        async with aiohttp.ClientSession() as http, http.get(s.base + "/api/events") as r:
            async with asyncio.timeout(HANG_GUARD):
                while b"event: status" not in (chunk := await r.content.readuntil(b"\n\n")):
                    pass
                shown.append((await r.content.readuntil(b"\n\n")).decode() + chunk.decode())
        assert "remote" in shown[0] and "HTTP 404" in shown[0]  # the failure is there...
        for text in shown:
            assert "s3cret-pw" not in text and "T0KEN-XYZ" not in text, text  # ...its secrets are not
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(HANG_GUARD):
            _out, err = await proc.communicate()
        origin.shutdown()
    log = "".join(s.log) + err.decode(errors="replace")
    assert "remote" in log and "s3cret-pw" not in log and "T0KEN-XYZ" not in log
    done = await s.cli("config", "check")
    assert "s3cret-pw" not in done.stdout + done.stderr and "T0KEN-XYZ" not in done.stdout + done.stderr
