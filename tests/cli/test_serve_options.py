"""``dnc-gateway serve``'s options against the file's: the log level (the command line wins over the file)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import write_sample
from tests.serving import ROOT, SERVE
from tests.state.redis_server import free_port


def _serve_log(conf: Path, *extra: str) -> str:
    """Start serve, wait for FastAGI, stop it with SIGTERM; what it logged."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "--config", str(conf), *extra, "serve", "--no-web",
                             "--agi-listen", f"127.0.0.1:{port}"], cwd=conf.parent,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, "serve exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "serve did not listen"
            time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err.decode(errors="replace")


def test_the_files_log_level_applies_unless_the_command_line_gives_one(tmp_path: Path) -> None:
    conf = write_sample(tmp_path)
    text = conf.read_text()
    assert "log_level" not in text
    conf.write_text(text.replace("[gateway]\n", '[gateway]\nlog_level = "ERROR"\n', 1))
    assert " INFO " not in _serve_log(conf)  # the file's ERROR: no INFO line (serve's default is INFO)
    assert " INFO gateway.app: dnc-gateway ready" in _serve_log(conf, "--log-level", "INFO")
