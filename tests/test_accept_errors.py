"""Out of file descriptors: the listeners' failed accept() calls are counted and logged once, not one ERROR
with a traceback per attempt (hundreds a second), and the gateway serves again once descriptors are back.
The default asyncio loop (uvloop drops such connections inside libuv and reports nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
from pathlib import Path

import pytest

from gateway.app import start
from gateway.config import load


async def test_emfile_on_accept_is_counted_and_logged_once(sample_config_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    running = await start(load(sample_config_path), web=False)
    try:
        assert running.agi is not None and running.metrics is not None
        port = running.agi.port
        clients = [socket.socket() for _ in range(10)]
        fill = []
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(int(fd) for fd in os.listdir("/proc/self/fd")) + 1, hard))
        try:
            while True:  # every descriptor below the limit taken: the next accept() gets EMFILE
                try:
                    fill.append(open(os.devnull))  # noqa: SIM115 - held open on purpose
                except OSError:
                    break
            for c in clients:
                c.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    c.connect(("127.0.0.1", port))
            for _ in range(100):
                if running.metrics.registry.get_sample_value("dnc_accept_errors_total", {"listener": "agi"}):
                    break
                await asyncio.sleep(0.02)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            for f in fill:
                f.close()
            for c in clients:
                c.close()
        assert (running.metrics.registry.get_sample_value("dnc_accept_errors_total", {"listener": "agi"}) or 0) >= 1
        lines = [r for r in caplog.records if "accept" in r.getMessage()]
        assert len(lines) == 1 and "dnc_accept_errors_total" in lines[0].getMessage()
        assert not any(r.exc_info for r in caplog.records)
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)  # serving again
        writer.close()
    finally:
        await running.close()
