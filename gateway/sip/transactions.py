"""Server transactions of a redirect server (RFC 3261 §17.2), sans-I/O: the table, its keys and its timers
as data; the clock is an argument.

Why a table at all for a server that keeps no call state: a client retransmits an INVITE over UDP until it
gets an answer (Timer A), and a retransmission must get the same answer, not a second decision (a second
attempt counted, a second audit record). So each request is remembered by its transaction key until no
retransmission of it can arrive any more:

- key (§17.2.3): the top Via's branch when it carries the RFC 3261 magic cookie, with its sent-by and the
  method (an ACK and a CANCEL match the INVITE's transaction through the same branch); for an RFC 2543 peer
  (no cookie), the Call-ID, CSeq number, From tag and the whole top Via;
- an INVITE waits in :attr:`State.PENDING` while its decision is made (a retransmission then gets
  ``100 Trying``, which stops the client's Timer A), then in :attr:`State.COMPLETED` with its final answer
  (a retransmission gets that answer again; over UDP the answer is also resent on Timer G, T1 doubling up to
  T2, until the ACK), then :attr:`State.CONFIRMED` once the ACK came (later ACKs absorbed, Timer I);
  Timer H (64·T1) ends a transaction whose ACK never came;
- a non-INVITE request (OPTIONS, CANCEL, anything answered 405) is kept for Timer J (64·T1 over UDP; none
  over a stream, where nothing is retransmitted).

Timers are entries of one heap ``(when, sequence, key, generation)``; a transaction that moved on bumps its
generation, so its stale timers are skipped when they come due instead of being searched for and removed.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final

from gateway.sip.message import BRANCH_COOKIE, SipRequest

__all__ = ["T1", "T2", "T4", "Due", "State", "Table", "Transaction", "TxnKey", "key_of"]

T1: Final = 0.5  # seconds: RTT estimate (RFC 3261 §17.1.1.1)
T2: Final = 4.0  # seconds: the longest retransmit interval of a non-INVITE request or an INVITE's final answer
T4: Final = 5.0  # seconds: how long a message may stay in the network

TxnKey = tuple[str, ...]


class State(enum.Enum):
    PENDING = "pending"  # an INVITE being decided
    COMPLETED = "completed"  # final answer sent
    CONFIRMED = "confirmed"  # an INVITE's ACK received


class Due(enum.Enum):
    """What a timer that came due asks the server to do."""

    RETRANSMIT = "retransmit"  # Timer G: send the final answer again
    DEADLINE = "deadline"  # a decision that takes too long: answer it (503) now
    EXPIRED = "expired"  # Timers H, I, J: the transaction is over (already removed)
    NO_ACK = "no_ack"  # Timer H: removed, and its ACK never came


def key_of(req: SipRequest) -> TxnKey:
    """The server transaction a request belongs to (RFC 3261 §17.2.3); an ACK or a CANCEL gets its INVITE's
    key with its own method (use :func:`invite_key` for the INVITE it refers to)."""
    branch = req.via.branch
    if branch.startswith(BRANCH_COOKIE):
        return (branch, req.via.sent_by.lower(), req.method)
    return ("2543", req.call_id, str(req.cseq), req.from_tag, req.via.raw, req.method)


def invite_key(key: TxnKey) -> TxnKey:
    """The key of the INVITE transaction an ACK or a CANCEL with ``key`` refers to."""
    return (*key[:-1], "INVITE")


@dataclass(slots=True)
class Transaction:
    key: TxnKey
    peer: Hashable  # where answers go (the adapter's: an address, a connection)
    reliable: bool  # came over a stream: nothing is retransmitted
    state: State
    invite: bool
    # The request, while its answer is still to be built; dropped once answered: the table holds some 64·T1
    # seconds of calls (tens of thousands), and a parsed request is dozens of objects the GC would walk.
    request: SipRequest | None
    to_tag: str
    answer: bytes = b""  # the final answer, once sent
    status: int = 0
    started: float = 0.0
    interval: float = T1  # Timer G's current interval
    h_at: float = 0.0  # Timer H: when an INVITE whose ACK never came is given up
    generation: int = 0
    cancelled: bool = False
    method: str = "INVITE"
    source: tuple[str, int] | None = None  # the address the request came from (the response's Via received)


@dataclass(slots=True)
class Table:
    """The server transactions in flight, at most ``limit`` of them."""

    limit: int = 200_000
    decision_timeout: float = 2.0  # seconds an INVITE may wait for its decision before it is answered 503
    by_key: dict[TxnKey, Transaction] = field(default_factory=dict)
    _timers: list[tuple[float, int, TxnKey, int]] = field(default_factory=list)
    _seq: int = 0

    def __len__(self) -> int:
        return len(self.by_key)

    @property
    def full(self) -> bool:
        return len(self.by_key) >= self.limit

    def get(self, key: TxnKey) -> Transaction | None:
        return self.by_key.get(key)

    def _arm(self, t: Transaction, when: float) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, t.key, t.generation))

    def _moved(self, t: Transaction) -> None:
        t.generation += 1  # its earlier timers are stale from now on

    def begin_invite(self, key: TxnKey, peer: Hashable, reliable: bool, req: SipRequest, to_tag: str,
                     now: float, source: tuple[str, int] | None = None) -> Transaction:
        t = Transaction(key, peer, reliable, State.PENDING, True, req, to_tag, started=now, source=source,
                        method=req.method)
        self.by_key[key] = t
        self._arm(t, now + self.decision_timeout)
        return t

    def complete(self, t: Transaction, status: int, answer: bytes, now: float) -> None:
        """The final answer of ``t`` was sent: Timer G (INVITE over UDP) and Timer H, or Timer J."""
        self._moved(t)
        t.state = State.COMPLETED
        t.request = None
        t.answer = answer
        t.status = status
        if t.invite:
            t.h_at = now + 64 * T1
            if not t.reliable:
                t.interval = T1
                self._arm(t, now + T1)
            self._arm(t, t.h_at)
        elif t.reliable:
            self.by_key.pop(t.key, None)  # Timer J is 0 over a stream
        else:
            self._arm(t, now + 64 * T1)

    def answered(self, key: TxnKey, peer: Hashable, reliable: bool, req: SipRequest, to_tag: str, status: int,
                 answer: bytes, now: float) -> Transaction:
        """A non-INVITE request answered at once."""
        t = Transaction(key, peer, reliable, State.COMPLETED, False, None, to_tag, started=now, method=req.method)
        self.by_key[key] = t
        self.complete(t, status, answer, now)
        return t

    def confirm(self, t: Transaction, now: float) -> None:
        """The ACK of an INVITE's final answer: no more retransmissions; Timer I absorbs later ACKs."""
        self._moved(t)
        t.state = State.CONFIRMED
        if t.reliable:
            self.by_key.pop(t.key, None)
        else:
            self._arm(t, now + T4)

    def next_timer(self) -> float | None:
        """When :meth:`due` next has something to do (possibly a stale timer: then it does nothing)."""
        return self._timers[0][0] if self._timers else None

    def due(self, now: float) -> list[tuple[Due, Transaction]]:
        """Every timer due at ``now``, in order: what each asks for."""
        out: list[tuple[Due, Transaction]] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            _when, _seq, key, gen = heapq.heappop(timers)
            t = self.by_key.get(key)
            if t is None or t.generation != gen:
                continue
            if t.state is State.PENDING:
                out.append((Due.DEADLINE, t))  # the server answers it, which calls complete()
            elif t.state is State.COMPLETED and t.invite and now < t.h_at:  # Timer G (H is armed at h_at)
                t.interval = min(2 * t.interval, T2)
                if now + t.interval < t.h_at:
                    self._arm(t, now + t.interval)
                out.append((Due.RETRANSMIT, t))
            else:
                del self.by_key[key]
                out.append((Due.NO_ACK if t.state is State.COMPLETED and t.invite else Due.EXPIRED, t))
        return out

