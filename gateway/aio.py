"""Small asyncio helpers shared by the background loops (state flusher, watchdog, AMI, live feed)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has really stopped (its ``finally`` blocks ran)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
