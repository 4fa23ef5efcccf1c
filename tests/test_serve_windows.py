"""A running ``serve`` keeps every attempt its longest window needs (issue: a 60-day window undercounted).

The stores used to drop attempts older than a fixed 31 days whatever ``window_days`` said, so a campaign
allowing 2 calls in 60 days let a third through on day 40. The gateway runs as installed, under libfaketime
(its wall clock moved by the test through a timestamp file; the monotonic clock left alone so timeouts
behave), and calls arrive over FastAGI, so the whole path is the production one: the engine's cap, the
service's count, the store's retention, and a restart that reloads the history from SQLite.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.replay.fastagi import ChannelInfo, run_session
from tests.conftest import write_sample
from tests.state.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SERVE = "import sys; from gateway.cli import main; sys.exit(main())"

pytestmark = pytest.mark.skipif(not LIBFAKETIME.exists(), reason="needs libfaketime (Debian package faketime)")

CAMPAIGN = """
[campaigns.slow]
regime = "none"
lists = ["company-dnc"]
caller_id = "0162000000"
window_days = 60
max_attempts = 2
check_hours = false
check_holidays = false
"""
DAY0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


class Serve:
    def __init__(self, conf: Path, clock_file: Path, cwd: Path) -> None:
        self.conf, self.clock_file, self.cwd = conf, clock_file, cwd
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def set_time(self, at: datetime) -> None:
        # libfaketime's absolute form; re-read on every clock call (FAKETIME_NO_CACHE).
        self.clock_file.write_text("@" + at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "\n")

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), LD_PRELOAD=str(LIBFAKETIME), FAKETIME_NO_CACHE="1",
                   FAKETIME_TIMESTAMP_FILE=str(self.clock_file), FAKETIME_DONT_FAKE_MONOTONIC="1",
                   DNC_GATEWAY_STATE_SECRET="windows-test")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "--config", str(self.conf), "--log-level", "WARNING", "serve",
             "--agi-listen", f"127.0.0.1:{self.port}", "--no-web"],
            cwd=self.cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                pytest.fail(f"serve exited with {self.proc.returncode}: {err[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "serve did not listen within 30 s"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=20) == 0
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None

    async def call(self, number: str, campaign: str = "slow") -> tuple[str, str]:
        info = ChannelInfo(f"agi://127.0.0.1:{self.port}/check", "check", (number, campaign))
        session = await run_session("127.0.0.1", self.port, info, session_timeout=10)
        return session.variables.get("DNC_VERDICT", ""), session.variables.get("DNC_REASON", "")


@contextmanager
def serving(tmp_path: Path, state: str) -> Iterator[Serve]:
    conf = write_sample(tmp_path / "conf", CAMPAIGN)
    conf.write_text(conf.read_text().replace('state = "memory://"', f'state = "{state}"'))
    serve = Serve(conf, tmp_path / "clock", tmp_path)
    serve.set_time(DAY0)
    try:
        yield serve
    finally:
        if serve.proc is not None and serve.proc.poll() is None:
            serve.proc.kill()
            serve.proc.wait(timeout=10)



async def test_a_60_day_window_counts_calls_older_than_31_days(tmp_path: Path, state_url: str) -> None:
    with serving(tmp_path, state_url) as serve:
        serve.start()
        assert await serve.call("0612000077") == ("ALLOW", "")
        serve.set_time(DAY0 + timedelta(days=35))
        assert await serve.call("0612000077") == ("ALLOW", "")
        # A restart reloads the history from the store: day 0 must survive it on day 40.
        serve.stop()
        serve.set_time(DAY0 + timedelta(days=40))
        serve.start()
        assert await serve.call("0612000077") == ("BLOCK", "frequency_cap")
        # Day 61 in the callee's calendar: day 0 has left the window, day 35 has not.
        serve.set_time(DAY0 + timedelta(days=60, hours=1))
        assert await serve.call("0612000077") == ("ALLOW", "")
        serve.stop()
