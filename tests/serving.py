"""``dnc-gateway serve`` as installed, in a subprocess, asked over FastAGI with the product's own client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from gateway.replay.fastagi import ChannelInfo, run_session
from tests.state.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
SERVE = "import sys; from gateway.cli import main; sys.exit(main())"  # `dnc-gateway serve`, uvloop when present


class Serve:
    """One gateway process on its own FastAGI port (no web), started and stopped by the test."""

    def __init__(self, conf: Path, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.conf, self.cwd = conf, cwd
        self.env = dict(env or {})
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), **self.env)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "--config", str(self.conf), "--log-level", "WARNING", "serve",
             "--agi-listen", f"127.0.0.1:{self.port}", "--no-web"],
            cwd=self.cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                pytest.fail(f"serve exited with {self.proc.returncode}: {err[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"serve did not listen within {timeout:g} s"
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it: the gateway drains and exits 0."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=20) == 0
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    async def call(self, number: str, campaign: str, uid: str = "0.1") -> tuple[str, str]:
        """One FastAGI check session; (DNC_VERDICT, DNC_REASON) as the dialplan sees them."""
        info = ChannelInfo(f"agi://127.0.0.1:{self.port}/check", "check", (number, campaign), uniqueid=uid)
        session = await run_session("127.0.0.1", self.port, info, session_timeout=10)
        return session.variables.get("DNC_VERDICT", ""), session.variables.get("DNC_REASON", "")
