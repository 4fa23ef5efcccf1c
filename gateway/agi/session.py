"""One FastAGI call, sans-I/O: the script the gateway plays and every deadline it keeps.

The script: environment block -> ``GET VARIABLE`` round trips (only when the route needs values the
arguments lack) -> the route's decision -> the answer (one ``EXEC MSet``, or one ``SET VARIABLE`` per
variable) -> close. :class:`Session` owns no socket and no clock, as aioquic's connection: every method that
can start a deadline takes ``now``, :meth:`Session.get_timer` says when :meth:`Session.handle_timer` is due,
and each input returns the :class:`Step` the transport (``server.py``) takes next. So every timeout is
unit-tested with numbers instead of sleeps (tests/agi/test_session.py).

The deadlines, all ``[agi] read_timeout`` long:

- the whole environment block, from the connection (a client trickling bytes gains nothing);
- each command's reply, from the moment the command is sent;
- none while the route decides (the Gateway call has no deadline of its own; the drain bounds it);
- a refused connection (``FAILURE`` written, half-closed) is cut if Asterisk has not closed it by then;
- the drain's deadline, when the server stops, cuts whatever is still open, in any phase.

The route's decision is the transport's to run, because it may have to be awaited: the session stops at
:attr:`Step.DECIDE` and goes on with :meth:`Session.answer`. The session knows of a route only what it reads
back (:class:`Routed`); the routes are given to it (``route``), so this core imports nothing above it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar, cast

from gateway.agi.protocol import (
    NEED_DATA,
    AgiConnection,
    AgiRequest,
    Command,
    ExecMSet,
    GetVariable,
    Hangup,
    ProtocolError,
    Reply,
    Sets,
    SetVariable,
)
from gateway.config import AgiSection, Answer

__all__ = [
    "FAILURE",
    "Cut",
    "ErrorKind",
    "Phase",
    "Routed",
    "Session",
    "Step",
    "answer",
    "answer_commands",
]

# res_agi.c's run_agi() takes a line starting with "failure" as the script's failure: AGISTATUS=FAILURE at once.
FAILURE: Final = b"FAILURE\n"


class Phase(enum.Enum):
    ENV = "env"  # reading the environment block
    READ = "read"  # GET VARIABLE round trips
    DECIDE = "decide"  # the route's Gateway call is running (seen only while the transport awaits it)
    SET = "set"  # the answer's round trips: one EXEC MSet, or a SET VARIABLE each
    DONE = "done"  # the last word said (the answer, or FAILURE): Asterisk's close is the normal end
    REFUSED = "refused"  # answered FAILURE before any session (over capacity, draining)
    CUT = "cut"  # ended without an answer: :attr:`Session.cut` says why


class Step(enum.Enum):
    """What the transport does after an input."""

    WAIT = "wait"  # nothing until more bytes come or the timer is due
    SEND = "send"  # write :attr:`Session.outgoing` (one command), then wait for its reply
    DECIDE = "decide"  # run :attr:`Session.handler`, then give its variables to :meth:`Session.answer`
    CLOSE = "close"  # the answer is complete: close the connection
    FAIL = "fail"  # write :attr:`Session.outgoing` (FAILURE), then close
    REFUSE = "refuse"  # write :attr:`Session.outgoing` (FAILURE), half-close, wait for Asterisk's close
    ABORT = "abort"  # cut the connection without a word (:attr:`Session.cut`)


class ErrorKind(enum.StrEnum):
    """The ``kind`` label of the gateway's FastAGI error counter."""

    PROTOCOL = "protocol"
    HEADER_TOO_LARGE = "header_too_large"
    EOF = "eof"
    TIMEOUT = "timeout"
    HANGUP = "hangup"
    INTERNAL = "internal"
    UNKNOWN_ROUTE = "unknown_route"
    OVERLOAD = "overload"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True, slots=True)
class Cut:
    """Why a session ended without its answer. ``kind`` None: the gateway's own choice (drain, refused)."""

    kind: ErrorKind | None
    message: str


def answer(sets: Sets, mode: Answer) -> tuple[Command, ...]:
    """The commands that set ``sets``: one ``EXEC MSet`` (``mode`` "mset") or a SET VARIABLE each.

    Values MSet cannot carry (a comma, a quote, white space) fall back to SET VARIABLEs.
    """
    if mode == _MSET and len(sets) > 1:
        # One round trip for all the variables; res_agi.c runs EXEC on a dead channel too, as it does SET VARIABLE.
        command = ExecMSet.of(sets)
        if command is not None:
            return (command,)
    return tuple([SetVariable(name, value) for name, value in sets])


def answer_commands(sets: Sequence[tuple[str, str]], mode: Answer) -> list[bytes]:
    """:func:`answer`, encoded: the bytes another server (bench/agi.py's) writes to answer the same way."""
    return [command.encode() for command in answer(tuple(sets), mode)]


# Members read through their enum class cost about 50 ns each (EnumType's attribute look-up, CPython 3.11):
# the per-call path below reads these module constants instead.
_CUT = Phase.CUT
_DECIDING = Phase.DECIDE
_DONE = Phase.DONE
_ENV = Phase.ENV
_READ = Phase.READ
_REFUSED = Phase.REFUSED
_SET = Phase.SET
_ABORT = Step.ABORT
_CLOSE = Step.CLOSE
_DECIDE = Step.DECIDE
_FAIL = Step.FAIL
_REFUSE = Step.REFUSE
_SEND = Step.SEND
_WAIT = Step.WAIT
_MSET = Answer.MSET


class Routed(Protocol):
    """What the session needs of a route: the channel variables it reads back for a request."""

    @property
    def reads(self) -> Callable[[AgiRequest], tuple[str, ...]]: ...


H = TypeVar("H", bound=Routed)


class Session(Generic[H]):
    """The gateway's side of one FastAGI call; see the module docstring. ``route``: the route for a script name
    (``agi_network_script``), one that fails closed for a name that is no route."""

    __slots__ = ("_drain_at", "_mode", "_route", "_sent", "_timeout", "commands", "conn", "cut", "deadline",
                 "handler", "hangup", "ok", "outgoing", "phase", "reads", "request", "values")

    def __init__(self, config: AgiSection, now: float, route: Callable[[str], H]) -> None:
        self.conn = AgiConnection(config.header_limit)
        self.phase = _ENV
        self._timeout = config.read_timeout
        self._mode = config.answer
        self.deadline = now + config.read_timeout  # the whole environment block; 0.0: no deadline
        self._drain_at = 0.0  # 0.0: not draining
        self.request: AgiRequest | None = None
        self._route = route
        self.handler: H | None = None  # the request's route, once the environment block is read
        self.reads: tuple[str, ...] = ()  # channel variables the route reads back, in order
        self.values: dict[str, str | None] = {}  # what they held (None: unset)
        self.commands: tuple[Command, ...] = ()  # the answer
        self._sent = 0  # commands of the answer already acknowledged
        self.outgoing = b""  # what a SEND, FAIL or REFUSE step writes
        self.cut: Cut | None = None
        self.hangup = False  # Asterisk wrote HANGUP: the channel is gone, the session carries on in dead mode
        self.ok = False  # the whole answer was acknowledged

    # -- timers (aioquic style: the clock is an argument) --------------------------------------------------------
    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is due next; None: no deadline."""
        if self.phase is _CUT:
            return None
        d, a = self.deadline, self._drain_at
        if d and a:
            return d if d < a else a
        return d or a or None

    def handle_timer(self, now: float) -> Step:
        """ABORT when a deadline has passed at ``now``, else WAIT (a timer that fired early: re-arm it)."""
        if self.phase is _CUT:
            return _WAIT
        d = self.deadline
        if d and now >= d:
            phase = self.phase
            if phase is _ENV:
                return self._abort(ErrorKind.TIMEOUT, f"no complete environment block within {self._timeout:g}s "
                                                      f"({self.conn.buffered} bytes received)")
            if phase is _REFUSED:
                return self._abort(None, f"refused connection still open after {self._timeout:g}s")
            return self._abort(ErrorKind.TIMEOUT, f"no reply within {self._timeout:g}s ({phase.value})")
        if self._drain_at and now >= self._drain_at:
            return self._abort(None, f"still open at the end of the drain ({self.phase.value})")
        return _WAIT

    def drain(self, deadline: float) -> None:
        """The server stops: whatever is still open at ``deadline`` is cut. An earlier drain deadline wins."""
        if not self._drain_at or deadline < self._drain_at:
            self._drain_at = deadline

    # -- inputs ---------------------------------------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> Step:
        """Bytes from Asterisk (not ``b""``: end of stream is :meth:`receive_eof`)."""
        if self.phase is _SET and self.conn.receive_common(data) is not None:  # the usual reply, one read
            self.deadline = 0.0
            self._sent += 1
            return self._set_next(now)
        self.conn.receive_data(data)
        return self._pump(now, _WAIT)

    def receive_eof(self, now: float) -> Step:
        self.conn.receive_data(b"")
        return self._pump(now, _WAIT)

    def answer(self, sets: Sets, now: float) -> Step:
        """The route's variables: the answer's first command, then the events that came while it decided."""
        if self.phase is not _DECIDING:
            raise RuntimeError(f"answer() in phase {self.phase.value}")
        self.commands = answer(sets, self._mode)
        self.phase = _SET
        step = self._set_next(now)
        return self._pump(now, step) if self.conn.has_input else step

    def fail(self) -> Step:
        """The route failed: answer FAILURE (AGISTATUS=FAILURE, the dialplan tries the next gateway or refuses)."""
        self.phase = _DONE
        self.deadline = 0.0
        self.outgoing = FAILURE
        return _FAIL

    def refuse(self, now: float) -> Step:
        """No session for this connection (over capacity, draining): FAILURE, and a deadline for Asterisk's close.

        A half-close, not a close: closing with the environment block unread would send a RST instead.
        """
        self.phase = _REFUSED
        self.deadline = now + self._timeout
        self.outgoing = FAILURE
        return _REFUSE

    # -- the script ----------------------------------------------------------------------------------------------
    def _pump(self, now: float, step: Step) -> Step:
        """Handle every complete event buffered; ``step`` is what is pending so far (a SEND to do)."""
        conn = self.conn
        while True:
            try:
                ev = conn.next_event()
            except ProtocolError as e:
                return self._abort(ErrorKind(e.kind), str(e))
            if ev is NEED_DATA:
                return step
            cls = ev.__class__
            if cls is Reply:
                step = self._on_reply(cast(Reply, ev), now)
            elif cls is AgiRequest:
                step = self._on_request(cast(AgiRequest, ev), now)
            elif cls is Hangup:  # the channel is gone; SET VARIABLE and EXEC still work in dead mode: carry on
                self.hangup = True
            elif self.phase is _DONE:  # Closed after the last command: the normal end
                return step
            else:  # Closed before the answer
                return self._abort(ErrorKind.HANGUP, f"Asterisk closed the connection ({self.phase.value})")
            if step is _DECIDE:
                return step  # the rest waits for answer()

    def _on_request(self, req: AgiRequest, now: float) -> Step:
        self.request = req
        self.deadline = 0.0  # no read pending
        self.handler = handler = self._route(req.script)
        self.reads = handler.reads(req)
        return self._read_next_or_decide(now)

    def _read_next_or_decide(self, now: float) -> Step:
        i = len(self.values)
        if i < len(self.reads):
            self.phase = _READ
            return self._send(GetVariable(self.reads[i]), now)
        self.phase = _DECIDING
        return _DECIDE

    def _on_reply(self, reply: Reply, now: float) -> Step:
        self.deadline = 0.0
        if self.phase is _READ:
            self.values[self.reads[len(self.values)]] = reply.data if reply.code == 200 and reply.result == "1" \
                else None
            return self._read_next_or_decide(now)
        self._sent += 1  # _SET: the only other phase with a command in flight
        return self._set_next(now)

    def _set_next(self, now: float) -> Step:
        i = self._sent
        if i < len(self.commands):
            return self._send(self.commands[i], now)
        self.phase = _DONE
        self.ok = True
        return _CLOSE

    def _send(self, command: Command, now: float) -> Step:
        self.outgoing = self.conn.send_encoded(command.encode())
        self.deadline = now + self._timeout
        return _SEND

    def _abort(self, kind: ErrorKind | None, message: str) -> Step:
        self.phase = _CUT
        self.deadline = 0.0
        self.cut = Cut(kind, message)
        return _ABORT
