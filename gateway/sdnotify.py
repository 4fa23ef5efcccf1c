"""systemd notifications (the sd_notify datagram protocol): READY, WATCHDOG heartbeats, STOPPING.

Why a watchdog: a gateway whose event loop is stuck still accepts TCP connections (the kernel does), and
Asterisk waits for FastAGI replies without a timeout (res_agi.c), so calls would hang rather than fail over.
The heartbeat is sent from the event loop itself: when the loop stops turning, systemd (``WatchdogSec=``)
kills and restarts the gateway, and the dialplan's second gateway takes the calls meanwhile.
Without ``$NOTIFY_SOCKET`` (not under systemd) everything here does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

from gateway.aio import cancel

log = logging.getLogger(__name__)


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (``READY=1``, ``STATUS=…``, ``WATCHDOG=1``, ``STOPPING=1``) to systemd, if it listens."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError as e:
        log.warning("sd_notify to %s failed: %s", env.get("NOTIFY_SOCKET"), e)
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Half of ``WatchdogSec`` (systemd's advice), when the watchdog is on for this process."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


class Watchdog:
    """Heartbeats from the event loop while it turns."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.interval = watchdog_interval(self.env)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._beat(self.interval), name="sd-watchdog")

    async def _beat(self, interval: float) -> None:
        while True:
            notify("WATCHDOG=1", self.env)
            await asyncio.sleep(interval)

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
