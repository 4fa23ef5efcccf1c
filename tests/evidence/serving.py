"""A real ``serve`` with its audit trail, an SQLite history and its web listener, for the evidence fault tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.replay.fastagi import ChannelInfo, run_session
from tests.conftest import write_sample
from tests.serving import ROOT, SERVE, Serve
from tests.state.redis_server import free_port

LIBFAKETIME = next(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"), Path("/nonexistent"))
needs_faketime = pytest.mark.skipif(not LIBFAKETIME.exists(), reason="needs libfaketime (Debian package faketime)")

# Any hour, any day: four calls in 30 days at most, no cooldown after a refusal (the tests count attempts).
CAMPAIGN = """
[campaigns.fours]
regime = "none"
lists = ["company-dnc"]
caller_id = "0162000000"
window_days = 30
max_attempts = 4
check_hours = false
check_holidays = false
check_cooldown = false
"""
TOKEN = "test-token"


def config(root: Path, state: str = "", extra: str = "") -> Path:
    """The sample config with an audit trail, a history (SQLite beside it unless ``state``) and data dir."""
    conf = write_sample(root, CAMPAIGN + extra)
    text = conf.read_text().replace('state = "memory://"',
                                    f'state = "{state or "sqlite://" + str(root / "state.db")}"\n'
                                    f'audit = "{root / "audit.db"}"\ndata_dir = "{root}"')
    conf.write_text(text)
    return conf


class WebServe(Serve):
    """:class:`tests.serving.Serve` with its web listener (``/healthz``, ``/metrics``, the API)."""

    def __init__(self, conf: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(conf, cwd, env)
        self.web_port = free_port()

    def start(self, timeout: float = 30.0) -> None:
        # Fresh ports at every start: a test that restarts the gateway must not find its old port taken meanwhile
        # by another socket's ephemeral port (the restarted serve then failed to listen on FastAGI and exited).
        self.port, self.web_port = free_port(), free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT), **self.env)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "--config", str(self.conf), "--log-level", "WARNING", "serve",
             "--agi-listen", f"127.0.0.1:{self.port}", "--web-listen", f"127.0.0.1:{self.web_port}"],
            cwd=self.cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                pytest.fail(f"serve exited with {self.proc.returncode}: {err[-2000:]}")
            try:
                self.http("GET", "/healthz")
                # The web listener opens before FastAGI's: ready when both answer.
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"serve did not listen within {timeout:g} s"
                time.sleep(0.05)

    def http(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.web_port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def metric(self, name: str) -> float | None:
        _, text = self.http("GET", "/metrics")
        for line in str(text).splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None


def faked(serve_env: dict[str, str], clock_file: Path) -> dict[str, str]:
    """Environment for a gateway whose wall clock is the time in ``clock_file`` (libfaketime, re-read each call)."""
    return {**serve_env, "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_NO_CACHE": "1",
            "FAKETIME_TIMESTAMP_FILE": str(clock_file), "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def set_time(clock_file: Path, at: datetime) -> None:
    clock_file.write_text("@" + at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "\n")


async def agi(gw: Serve, route: str, *args: str, uid: str = "17.1") -> str:
    """A refusal / optout / consent FastAGI session; its DNC_RESULT."""
    info = ChannelInfo(f"agi://127.0.0.1:{gw.port}/{route}", route, args, uniqueid=uid)
    session = await run_session("127.0.0.1", gw.port, info, session_timeout=10)
    return session.variables.get("DNC_RESULT", "")


def cli(conf: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SERVE, "--config", str(conf), *args], cwd=conf.parent,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})), capture_output=True, text=True,
                          timeout=120)
