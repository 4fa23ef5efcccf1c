"""How far a retention purge may trust the wall clock (pure: the clock and the monotonic clock are arguments).

Evidence must never be purged because a clock jumped. A start six years ahead (a bad NTP answer, a VM restored
with the wrong date) would otherwise make every record "older than the retention" at once. The guard judges the
wall clock against the newest record the store held when it was opened: time can only have advanced since then
by the process's uptime (the monotonic clock, which no one sets) plus a gap the gateway was down for. The gap
cannot be known, so the purge trusts at most :data:`SLACK` of it; a longer downtime only delays the purge of the
oldest records by that much (a record kept a little longer is always the safe side of a proof duty).

``now()`` is the instant a purge may use: the wall clock, or the plausible bound when the wall clock is beyond it
(``ahead()`` then says by how much, for the log and ``/healthz``). Writes keep the wall clock: a decision is dated
when it was taken; only what is *deleted* is judged here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SLACK = 86400.0  # seconds of downtime a purge trusts beyond the newest record (plus the uptime)


class ClockGuard:
    """The plausible "now" for purges: ``min(wall clock, newest record + uptime + SLACK)``."""

    __slots__ = ("_clock", "_monotonic", "_newest", "_since", "slack")

    def __init__(self, newest: float | None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, slack: float = SLACK) -> None:
        self._newest = newest  # UNIX time of the newest record when the store was opened (None: it was empty)
        self._clock = clock
        self._monotonic = monotonic
        self._since = monotonic()
        self.slack = slack

    def bound(self) -> float | None:
        """The latest instant it can plausibly be (None: nothing to judge against, an empty store)."""
        if self._newest is None:
            return None
        return self._newest + (self._monotonic() - self._since) + self.slack

    def ahead(self) -> float:
        """Seconds by which the wall clock is beyond the plausible bound (0 when it is plausible)."""
        bound = self.bound()
        return 0.0 if bound is None else max(0.0, self._clock() - bound)

    def now(self) -> float:
        """The instant a purge may count its cutoff from."""
        wall = self._clock()
        bound = self.bound()
        return wall if bound is None else min(wall, bound)
