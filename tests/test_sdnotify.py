"""systemd notifications: READY/STOPPING datagrams and watchdog heartbeats from the event loop."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from gateway.sdnotify import Watchdog, notify, watchdog_interval


def _listener(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    return sock, path


def test_notify_sends_a_datagram_and_is_silent_outside_systemd(tmp_path: Path) -> None:
    sock, path = _listener(tmp_path)
    with sock:
        assert notify("READY=1\nSTATUS=ok", {"NOTIFY_SOCKET": path})
        assert sock.recv(256) == b"READY=1\nSTATUS=ok"
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})  # logged, not raised


def test_watchdog_interval_is_half_of_watchdog_sec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}) is None  # another process's
    assert watchdog_interval({}) is None


async def test_heartbeats_come_from_the_running_loop(tmp_path: Path) -> None:
    sock, path = _listener(tmp_path)
    sock.setblocking(False)
    dog = Watchdog({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})
    dog.start()
    await asyncio.sleep(0.15)
    await dog.close()
    beats = []
    while True:
        try:
            beats.append(sock.recv(64))
        except BlockingIOError:
            break
    sock.close()
    assert len(beats) >= 3 and set(beats) == {b"WATCHDOG=1"}


def test_serve_says_ready_beats_and_says_stopping(tmp_path: Path, sample_config_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    sock, path = _listener(tmp_path)
    sock.settimeout(30)
    exe = Path(sys.executable).parent / "dnc-gateway"
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    proc = subprocess.Popen([str(exe), "--config", str(sample_config_path), "serve", "--no-web"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen = []
        while not any(m.startswith(b"READY=1") for m in seen):
            seen.append(sock.recv(256))
        assert b"STATUS=FastAGI on 127.0.0.1:" in seen[-1]
        assert sock.recv(64) == b"WATCHDOG=1"
        proc.send_signal(signal.SIGTERM)
        while (msg := sock.recv(256)) == b"WATCHDOG=1":
            pass
        assert msg == b"STOPPING=1"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
