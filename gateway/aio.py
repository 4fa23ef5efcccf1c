"""Small asyncio helpers shared by the background loops (state flusher, watchdog, AMI, live feed)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
from typing import Any


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has really stopped (its ``finally`` blocks ran)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class ListenError(Exception):
    """A listener could not bind its address: one line for the operator (``serve`` prints it, no traceback)."""


# What an operator can do about each bind failure; anything else is worded by the OS.
_BIND_HINTS = {
    errno.EADDRINUSE: "address already in use (another dnc-gateway or another program holds it: stop it, or "
                      "choose another port)",
    errno.EACCES: "permission denied (a port below 1024 needs privileges: use a higher one)",
    errno.EADDRNOTAVAIL: "this host has no such address",
}


def listen_error(what: str, key: str, address: str, e: OSError) -> ListenError:
    """``cannot listen on 127.0.0.1:4573 for FastAGI ([agi] listen): address already in use (…)``."""
    why = _BIND_HINTS.get(e.errno or 0) or e.strerror or str(e)
    return ListenError(f"cannot listen on {address} for {what} ({key}): {why}")
