"""What the policy reads of a number's history: a frozen value, fetched before the decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class History:
    """Everything the rules need to know about past calls to one number by one professional."""

    attempts: tuple[datetime, ...] = ()  # calls or attempted calls, oldest first (UTC)
    last_refusal: datetime | None = None  # the callee said "do not call me"
    opted_out_at: datetime | None = None  # added to the internal do-not-call list through the gateway

    def attempts_since(self, since: datetime) -> int:
        return sum(1 for t in self.attempts if t >= since)


EMPTY_HISTORY = History()


class Cap(NamedTuple):
    """An atomic check-and-count: record the attempt only if fewer than ``limit`` happened since ``since``.

    The engine computes it (the pack's or campaign's limit and window, in the callee's calendar) and the
    decision carries it; the state store counts exactly that. A NamedTuple: one is built per counted call.
    """

    limit: int
    since: datetime


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the stores keep what the rules may still read: derived from the configured windows."""

    attempts: timedelta  # the longest frequency window, plus a day for the callee's time zone
    refusals: timedelta  # the longest refusal cooldown, plus a day
