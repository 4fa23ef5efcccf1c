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


def test_a_busy_port_at_start_is_one_clear_line(tmp_path: Path) -> None:
    """A port another program holds: exit 1 with one line naming the address, the listener and the config key;
    no traceback. The audit log the start opened is closed in order (its file is usable afterwards)."""
    conf = write_sample(tmp_path)
    conf.write_text(conf.read_text().replace('state = "memory://"', 'state = "memory://"\naudit = "audit.db"'))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        for option, what in (("--agi-listen", "FastAGI ([agi] listen)"), ("--web-listen", "([web] listen)")):
            other = "--web-listen" if option == "--agi-listen" else "--agi-listen"
            out = subprocess.run([sys.executable, "-c", SERVE, "--config", str(conf), "serve", option, taken,
                                  other, f"127.0.0.1:{free_port()}"], cwd=conf.parent,
                                 env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                                 timeout=60)
            assert out.returncode == 1, out.stderr
            assert "Traceback" not in out.stderr
            errors = [line for line in out.stderr.splitlines() if line.startswith("dnc-gateway serve:")]
            assert len(errors) == 1 and taken in errors[0] and what in errors[0], out.stderr
            assert "address already in use" in errors[0]
            assert [line for line in out.stderr.splitlines() if " ERROR " in line] == [], out.stderr
    verify = subprocess.run([sys.executable, "-c", SERVE, "--config", str(conf), "audit", "verify"], cwd=conf.parent,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
