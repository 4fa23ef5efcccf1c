"""The SIP redirect server, sans-I/O: requests in, answers and decisions to make out (RFC 3261 §8.3, §17.2).

:class:`Redirector` owns no socket, no clock and no decision: :meth:`Redirector.receive` takes one message
(a datagram, or a message the stream framer cut) with the time, and returns :class:`Event` values: bytes to
:class:`Send`, a :class:`Decide` for a new INVITE (the adapter asks the Gateway, then hands the answer to
:meth:`Redirector.decided`), or a :class:`Dropped`. :meth:`Redirector.timers` does what the transaction
timers ask (see :mod:`gateway.sip.transactions`).

The answers (DESIGN §7):

- ALLOW (monitor mode included): ``302 Moved Temporarily`` with ``Contact: <ROUTE>``, the route's user
  part replaced by the dialled number: the proxy follows it to the carrier;
- BLOCK: ``603 Decline`` with ``Reason: Q.850;cause=21;text="dnc:REASON"`` (21: call rejected) and
  ``X-DNC-Reason: REASON``;
- no decision possible (the call history or the audit unavailable, the gateway draining or overloaded, a
  decision over its deadline, an internal error): ``503 Service Unavailable`` with the reason in the same
  two headers, so that the proxy tries its next gateway and, with none left, refuses the call;
- ``OPTIONS`` (the proxy's keep-alive ping): 200, or 503 while draining (the proxy stops sending calls);
- ``CANCEL``: 200, and the INVITE it cancels ``487`` when it was not answered yet; 481 when it matches none;
- ``ACK``: absorbed; any other method: 405; a request inside a dialog (a To tag): 481, since a redirect
  server keeps no dialog; a malformed request: 400 when it can be answered, else dropped.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from gateway.sip.message import (
    BadRequest,
    Drop,
    SipRequest,
    addr_uri,
    build_response,
    parse_request,
    uri_user,
    with_user,
)
from gateway.sip.transactions import Due, State, Table, Transaction, TxnKey, invite_key, key_of

__all__ = [
    "ALLOW",
    "Decide",
    "Decline",
    "Dropped",
    "Event",
    "Redirect",
    "Redirector",
    "Send",
    "Unavailable",
]

ALLOW: Final = "INVITE, ACK, CANCEL, OPTIONS"
HEADER_CAMPAIGN: Final = "x-dnc-campaign"
Q850_REJECTED: Final = 21  # call rejected: the refusal the agent's phone shows
Q850_TEMPORARY: Final = 41  # temporary failure: no decision could be made
DRAINING: Final = "draining"
OVERLOADED: Final = "overloaded"
TIMEOUT: Final = "decision_timeout"
_SCHEMES: Final = ("sip:", "sips:", "tel:")

Source = tuple[str, int]  # the address a request came from (for Via received/rport)


class Redirect(NamedTuple):
    """ALLOW: 302 to the route with ``number`` as its user."""

    number: str
    decision_id: str
    would_block: bool = False  # monitor mode: allowed, but the rules would have blocked it


class Decline(NamedTuple):
    """BLOCK: 603 with the reason code."""

    reason: str
    decision_id: str


class Unavailable(NamedTuple):
    """No decision could be made: 503 with why (a reason code, or ``draining``, ``overloaded``, …)."""

    reason: str
    decision_id: str = ""


Answer = Redirect | Decline | Unavailable


@dataclass(frozen=True, slots=True)
class Send:
    """Bytes for ``peer``. ``final``: an INVITE's final answer, first sent, with its time since the INVITE."""

    peer: Hashable
    data: bytes
    method: str
    status: int
    retransmission: bool = False
    elapsed: float | None = None


@dataclass(frozen=True, slots=True)
class Decide:
    """A new INVITE to decide; hand the answer to :meth:`Redirector.decided` with ``key``."""

    key: TxnKey
    number: str
    campaign: str | None  # the X-DNC-Campaign header; None: the adapter's per-source default
    caller_id: str | None
    call_id: str
    source: Source


@dataclass(frozen=True, slots=True)
class Dropped:
    kind: str  # a bounded code (metric label)


Event = Send | Decide | Dropped


def _random_tags() -> Callable[[], str]:
    rnd = random.Random(secrets.token_bytes(16))  # unique, not secret: no system call per tag
    return lambda: f"{rnd.getrandbits(48):012x}"


def caller_id_of(req: SipRequest) -> str | None:
    """What the callee is presented: P-Asserted-Identity (what a trunk passes on), else the From user."""
    pai = req.header("p-asserted-identity")
    user = uri_user(addr_uri(pai)) if pai else ""
    return user or uri_user(addr_uri(req.from_)) or None


def number_of(req: SipRequest) -> str:
    """The dialled number: the Request-URI's user (or a tel: URI's number), else the To URI's."""
    return uri_user(req.uri) or uri_user(addr_uri(req.to))


@dataclass(slots=True)
class Redirector:
    route: str  # "sip:carrier@HOST:PORT": its user is replaced by the number in the 302's Contact
    table: Table = field(default_factory=Table)
    limit: int = 65535  # bytes of one message
    tags: Callable[[], str] = field(default_factory=_random_tags)
    draining: bool = False

    # -- input ------------------------------------------------------------------------------------------------
    def receive(self, data: bytes, peer: Hashable, source: Source, now: float, *,
                reliable: bool = False) -> list[Event]:
        """One message from ``peer`` (which came from ``source``): what to do about it."""
        try:
            req = parse_request(data, limit=self.limit, stream=reliable)
        except Drop as e:
            return [Dropped(str(e.kind))]
        except BadRequest as e:
            if e.request.method == "ACK":  # an ACK is never answered, even a wrong one
                return [Dropped("bad_ack")]
            return [self._stateless(e.request, peer, source, 400, reason=f"Bad Request ({e})")]
        key = key_of(req)
        method = req.method
        if method == "ACK":
            t = self.table.get(invite_key(key))
            if t is not None and t.state is State.COMPLETED:
                self.table.confirm(t, now)
            return []  # absorbed: an ACK is never answered
        t = self.table.get(key)
        if t is not None:
            return self._again(t)
        if method == "INVITE":
            return self._invite(req, key, peer, source, now, reliable)
        if method == "CANCEL":
            return self._cancel(req, key, peer, source, now, reliable)
        if method == "OPTIONS":
            if self.draining:
                return [self._answer_now(req, key, peer, source, now, reliable, 503, _reason_headers(
                    Unavailable(DRAINING), Q850_TEMPORARY))]
            return [self._answer_now(req, key, peer, source, now, reliable, 200, (
                ("Allow", ALLOW), ("Accept", "application/sdp")))]
        return [self._answer_now(req, key, peer, source, now, reliable, 405, (("Allow", ALLOW),))]

    def _again(self, t: Transaction) -> list[Event]:
        """A retransmission: the same answer (or 100 Trying while deciding), never a second decision."""
        if t.state is State.PENDING:
            assert t.request is not None  # kept until answered
            return [Send(t.peer, build_response(t.request, 100), t.method, 100, retransmission=True)]
        if t.state is State.COMPLETED:
            return [Send(t.peer, t.answer, t.method, t.status, retransmission=True)]
        return []  # an INVITE retransmitted after its ACK: nothing left to say

    def _invite(self, req: SipRequest, key: TxnKey, peer: Hashable, source: Source, now: float,
                reliable: bool) -> list[Event]:
        if req.to_tag:
            return [self._stateless(req, peer, source, 481)]
        if not req.uri.lower().startswith(_SCHEMES):
            return [self._stateless(req, peer, source, 416)]
        if self.table.full:
            return [self._stateless(req, peer, source, 503, headers=_reason_headers(
                Unavailable(OVERLOADED), Q850_TEMPORARY))]
        self.table.begin_invite(key, peer, reliable, req, self.tags(), now, source)
        if self.draining:
            return self.decided(key, Unavailable(DRAINING), now)
        return [Decide(key, number_of(req), req.header(HEADER_CAMPAIGN), caller_id_of(req), req.call_id, source)]

    def _cancel(self, req: SipRequest, key: TxnKey, peer: Hashable, source: Source, now: float,
                reliable: bool) -> list[Event]:
        t = self.table.get(invite_key(key))
        if t is None:
            return [self._answer_now(req, key, peer, source, now, reliable, 481)]
        out: list[Event] = [self._answer_now(req, key, peer, source, now, reliable, 200, to_tag=t.to_tag)]
        if t.state is State.PENDING:  # its decision, when it comes, finds the transaction answered and is dropped
            t.cancelled = True
            out.extend(self._final(t, 487, (), now))
        return out

    # -- the decision -----------------------------------------------------------------------------------------
    def decided(self, key: TxnKey, answer: Answer, now: float) -> list[Event]:
        """The INVITE ``key``'s answer: its final response, or nothing when it was answered already
        (cancelled, or over its deadline) or is forgotten."""
        t = self.table.get(key)
        if t is None or t.state is not State.PENDING:
            return []
        if isinstance(answer, Redirect):
            headers = [("Contact", f"<{with_user(self.route, answer.number)}>")]
            if answer.would_block:
                headers.append(("X-DNC-Would-Block", "1"))
            headers.append(("X-DNC-Decision-Id", answer.decision_id))
            return self._final(t, 302, headers, now)
        if isinstance(answer, Decline):
            return self._final(t, 603, _reason_headers(answer, Q850_REJECTED), now)
        return self._final(t, 503, _reason_headers(answer, Q850_TEMPORARY), now)

    def _final(self, t: Transaction, status: int, headers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
               now: float) -> list[Event]:
        assert t.request is not None  # PENDING: not answered yet
        data = build_response(t.request, status, to_tag=t.to_tag, headers=headers, received=t.source)
        self.table.complete(t, status, data, now)
        return [Send(t.peer, data, "INVITE", status, elapsed=now - t.started)]

    # -- timers -----------------------------------------------------------------------------------------------
    def next_timer(self) -> float | None:
        return self.table.next_timer()

    def timers(self, now: float) -> list[Event]:
        out: list[Event] = []
        for due, t in self.table.due(now):
            if due is Due.DEADLINE:
                out.extend(self.decided(t.key, Unavailable(TIMEOUT), now))
            elif due is Due.RETRANSMIT:
                out.append(Send(t.peer, t.answer, t.method, t.status, retransmission=True))
            elif due is Due.NO_ACK:
                out.append(Dropped("no_ack"))
        return out

    # -- helpers ----------------------------------------------------------------------------------------------
    def _answer_now(self, req: SipRequest, key: TxnKey, peer: Hashable, source: Source, now: float,
                    reliable: bool, status: int, headers: tuple[tuple[str, str], ...] = (), *,
                    to_tag: str = "") -> Send:
        tag = to_tag or self.tags()
        data = build_response(req, status, to_tag=tag, headers=headers, received=source)
        self.table.answered(key, peer, reliable, req, tag, status, data, now)
        return Send(peer, data, req.method, status)

    def _stateless(self, req: SipRequest, peer: Hashable, source: Source, status: int, *, reason: str = "",
                   headers: tuple[tuple[str, str], ...] = ()) -> Send:
        """An answer kept nowhere: a retransmission gets the same status again, at no cost (nothing decided)."""
        data = build_response(req, status, to_tag=self.tags(), reason=reason, headers=headers, received=source)
        return Send(peer, data, req.method, status)


def _reason_headers(answer: Decline | Unavailable, cause: int) -> tuple[tuple[str, str], ...]:
    headers: tuple[tuple[str, str], ...] = (("Reason", f'Q.850;cause={cause};text="dnc:{answer.reason}"'),
                                            ("X-DNC-Reason", answer.reason))
    if answer.decision_id:
        headers += (("X-DNC-Decision-Id", answer.decision_id),)
    return headers
