"""What the policy reads of a number's history: a frozen value, fetched before the decision."""

from __future__ import annotations

import enum
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

# The Redis bounds the config builds live below it (gateway/values/redis.py); re-exported under their old name.
from gateway.values.redis import REDIS_DEFAULTS as REDIS_DEFAULTS
from gateway.values.redis import RedisSettings as RedisSettings

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
"""Attempts are held as *stamps*: whole seconds since ``EPOCH``, rounded up, in both stores (the embedded one's
``array('I')``, Redis' sorted-set scores). Rounded up, a stamp is never earlier than the real attempt: a cap
(count the stamps at or after ``stamp(since)``) can count one a second longer, never miss one."""
_EPOCH_TS = int(EPOCH.timestamp())
MAX_STAMP = (1 << 32) - 1  # array('I'): seconds up to 2156


def stamp(at: datetime) -> int:
    """``at`` as whole seconds since ``EPOCH``, rounded up (exact: no float); before the epoch is 0."""
    d = at - EPOCH
    s = d.days * 86400 + d.seconds + (1 if d.microseconds else 0)
    if s > MAX_STAMP:
        raise ValueError(f"instant out of range for the call history: {at.isoformat()}")
    return s if s > 0 else 0


def instant(s: int) -> datetime:
    """The instant of stamp ``s`` (UTC)."""
    return datetime.fromtimestamp(_EPOCH_TS + s, UTC)


@dataclass(frozen=True, slots=True, init=False)
class History:
    """Everything the rules need to know about past calls to one number by one professional.

    The attempts are held as stamps (see ``EPOCH``), oldest first: a cap counts them with a bisection, and no
    datetime is built per attempt on the hot path (a number at its cap is read at every call, with up to a hundred
    attempts). ``attempts``, their instants, is built on first use, for the few readers that show them (the proof
    dossier, ``registry proof``).
    """

    stamps: array[int]  # the attempts as stamps, oldest first; never changed once the History is built
    last_refusal: datetime | None  # the callee said "do not call me"
    opted_out_at: datetime | None  # added to the internal do-not-call list through the gateway
    # The latest consent recorded at a call or over the API (FastAGI ``consent``, ``POST /api/consents``): given
    # to the professional, it counts for every campaign until a later refusal (issue 13).
    consent_at: datetime | None
    _instants: tuple[datetime, ...] | None = field(init=False, compare=False, repr=False)

    def __init__(self, attempts: Iterable[datetime] = (), last_refusal: datetime | None = None,
                 opted_out_at: datetime | None = None, consent_at: datetime | None = None, *,
                 stamps: array[int] | None = None) -> None:
        """``attempts``: the calls or attempted calls (UTC), kept as stamps (rounded up to the second); or
        ``stamps``, sorted, from a store (taken as they are, not copied)."""
        if stamps is None:
            stamps = array("I", sorted(map(stamp, attempts)))
        elif attempts:
            raise TypeError("History: attempts or stamps, not both")
        set_ = object.__setattr__  # frozen: the one place its fields are set
        set_(self, "stamps", stamps)
        set_(self, "last_refusal", last_refusal)
        set_(self, "opted_out_at", opted_out_at)
        set_(self, "consent_at", consent_at)
        set_(self, "_instants", None)

    def __hash__(self) -> int:
        return hash((self.stamps.tobytes(), self.last_refusal, self.opted_out_at, self.consent_at))

    @property
    def attempts(self) -> tuple[datetime, ...]:
        """The attempts' instants, oldest first (UTC, whole seconds): built once, on first use."""
        found = self._instants
        if found is None:
            found = tuple(map(instant, self.stamps))
            object.__setattr__(self, "_instants", found)
        return found

    @property
    def attempt_count(self) -> int:
        return len(self.stamps)

    def attempts_since(self, since: datetime) -> int:
        """How many attempts at or after ``since``: what the stores count against a cap (a bisection)."""
        stamps = self.stamps
        return len(stamps) - bisect_left(stamps, stamp(since)) if stamps else 0


EMPTY_HISTORY = History()


class StateUnavailable(Exception):
    """The store cannot answer (Redis down): the caller applies ``state_failure``."""


class StateLoading(StateUnavailable):
    """The history is still being read from disk at start-up: the call fails closed whatever ``state_failure``
    says (deciding "open" would be deciding on an empty history)."""


class StateLost(StateLoading):
    """The store is not the one the gateway wrote (an empty or replaced SQLite file, a Redis restarted empty): its
    history is gone, so the call fails closed whatever ``state_failure`` says, until ``dnc-gateway state rebuild``
    restores it (see ``gateway.state.marker``)."""


class Cap(NamedTuple):
    """An atomic check-and-count: record the attempt only if fewer than ``limit`` happened since ``since``.

    The engine computes it (the pack's or campaign's limit and window, in the callee's calendar) and the
    decision carries it; the state store counts exactly that. A NamedTuple: one is built per counted call.
    """

    limit: int
    since: datetime


class Counted(enum.IntEnum):
    """What a one-trip read-and-count did with the attempt (the values are the Lua script's replies)."""

    CAP_REACHED = 0  # not counted: ``limit`` attempts already since ``since``
    COUNTED = 1  # counted (provisionally: the service takes it back if its decision does not count the call)
    NOT_TRIED = 2  # not counted: a read only, or the number has a refusal or an opt-out (the decision may block)


class Trip(NamedTuple):
    """The answer of a one-trip read-and-count: the history before this call, and what became of the attempt."""

    history: History
    counted: Counted
    member: bytes  # the attempt's id in the store, to take a provisional count back


REFUSAL_FLOOR = timedelta(days=3 * 366)
"""Refusals are never kept shorter than this: under the consent regime a refusal ends consent for good, and the
CNIL's guidance keeps prospect data 3 years after the last contact."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the stores keep history: data computed from the campaigns, never a constant.

    ``attempts`` must cover the longest frequency window (plus a margin), or a long window undercounts.
    """

    attempts: timedelta
    refusals: timedelta

    def __post_init__(self) -> None:
        if self.attempts <= timedelta(0) or self.refusals <= timedelta(0):
            raise ValueError(f"retention must be positive: {self}")

    @property
    def kept_refusals(self) -> timedelta:
        """What the stores apply to refusals: the given retention, never under ``REFUSAL_FLOOR``."""
        return max(self.refusals, REFUSAL_FLOOR)
