"""What the policy reads of a number's history: a frozen value, fetched before the decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class History:
    """Everything the rules need to know about past calls to one number by one professional."""

    attempts: tuple[datetime, ...] = ()  # calls or attempted calls, oldest first (UTC)
    last_refusal: datetime | None = None  # the callee said "do not call me"
    opted_out_at: datetime | None = None  # added to the internal do-not-call list through the gateway

    def attempts_since(self, since: datetime) -> int:
        return sum(1 for t in self.attempts if t >= since)


EMPTY_HISTORY = History()
