"""Reconnection delays: exponential, capped, jittered (pure: the random draw is an argument)."""

from __future__ import annotations


def first_delay(cap: float) -> float:
    """The first retry: quick (a restarted Asterisk is back within a second or two), but never above the cap.

    A sixteenth of the cap gives four doublings before the cap, whatever the cap is: with the default
    30 s that is 1 s, 2 s, 4 s, 8 s, 16 s, 30 s; with a test's 0.4 s, 25 ms up to 0.4 s.
    """
    return min(1.0, cap / 16)


def delay(attempt: int, cap: float, draw: float) -> float:
    """Seconds to wait before reconnection ``attempt`` (0 = the first retry).

    ``draw`` in [0, 1) spreads the delay over its upper half, so that several gateways cut off by the
    same Asterisk restart do not all log in again in the same millisecond.
    """
    base = min(cap, first_delay(cap) * 2.0 ** min(attempt, 32))
    return base * (0.5 + draw / 2)
