"""How far a retention purge may trust the wall clock (pure: the clock and the monotonic clock are arguments).

Evidence must never be purged because a clock jumped. A start six years ahead (a bad NTP answer, a VM restored
with the wrong date) would otherwise make every record "older than the retention" at once. The guard judges the
wall clock against a trusted instant: the last "now" a purge used, kept in the store (or, the first time, the
newest record it holds). Time can only have advanced since then by the process's uptime (the monotonic clock,
which no one sets) plus the time the gateway was down. That downtime cannot be known, so up to :data:`SLACK` of
it is believed; a wall clock further ahead is not, and purges count from the trusted instant plus the uptime
(``ahead()`` says by how much the clock is beyond, for the log and ``/healthz``). A longer downtime only delays
purges by that much: a record kept a little longer is always the safe side of a proof duty. Since the trusted
instant is what purges used, a second start still ahead is no more believed than the first.

Writes keep the wall clock: a decision is dated when it was taken; only what is *deleted* is judged here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SLACK = 7 * 86400.0  # seconds of downtime believed beyond the trusted instant plus the uptime


class ClockGuard:
    """The plausible "now" for purges: the wall clock while within ``trusted + uptime + SLACK``, else
    ``trusted + uptime``."""

    __slots__ = ("_clock", "_monotonic", "_newest", "_since", "slack")

    def __init__(self, newest: float | None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, slack: float = SLACK) -> None:
        self._newest = newest  # the trusted instant when the store was opened (None: nothing to judge against)
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
        """The instant a purge may count its cutoff from (and the next trusted instant)."""
        wall = self._clock()
        bound = self.bound()
        if bound is None or wall <= bound:
            return wall
        return bound - self.slack
