"""One FastAGI call without sockets or a clock: every deadline checked with an injected ``now``."""

from __future__ import annotations

import re

import pytest

from gateway.agi import routes
from gateway.agi.protocol import ExecMSet, GetVariable, SetVariable, get_variable, mset, set_variable
from gateway.agi.session import FAILURE, ErrorKind, Phase, Session, Step, answer, answer_commands
from gateway.config import AgiSection, Answer
from gateway.service import Gateway
from tests.agi.fake_asterisk import Captured, captured_sessions, env_block

T0 = 1000.0  # the connection's time, on the transport's clock
TIMEOUT = 2.0
ENV = env_block(args=("0612000001", "legacy"))
SETS: routes.Sets = (("DNC_REASON", "opposition_list"), ("DNC_DECISION_ID", "abc"), ("DNC_WOULD_BLOCK", "1"),
                     ("DNC_VERDICT", "BLOCK"))


def session(answer: str = "mset", now: float = T0) -> Session[routes.Handler]:
    return Session(AgiSection(read_timeout=TIMEOUT, answer=answer), now, routes.handler_for)


def deciding(answer: str = "mset", env: bytes = ENV) -> Session:
    s = session(answer)
    assert s.receive_data(env, T0 + 0.1) is Step.DECIDE
    return s


# -- the environment block ------------------------------------------------------------------------------------

def test_the_whole_environment_block_has_one_deadline() -> None:
    s = session()
    assert s.phase is Phase.ENV and s.get_timer() == T0 + TIMEOUT
    for i, byte in enumerate(ENV[:-1]):  # a byte at a time, each in time: the deadline does not move
        assert s.receive_data(bytes([byte]), T0 + i * 0.001) is Step.WAIT
        assert s.get_timer() == T0 + TIMEOUT
    assert s.handle_timer(T0 + TIMEOUT - 0.001) is Step.WAIT  # a timer firing early changes nothing
    assert s.handle_timer(T0 + TIMEOUT) is Step.ABORT
    assert s.phase is Phase.CUT and s.cut is not None and s.cut.kind is ErrorKind.TIMEOUT
    assert s.cut.message == f"no complete environment block within 2s ({len(ENV) - 1} bytes received)"
    assert s.get_timer() is None and s.handle_timer(T0 + 100) is Step.WAIT  # cut once


def test_block_in_time_stops_the_deadline_until_a_command_is_sent() -> None:
    s = session()
    assert s.receive_data(ENV[:40], T0 + 1.0) is Step.WAIT
    assert s.receive_data(ENV[40:], T0 + 1.9) is Step.DECIDE
    assert s.get_timer() is None and s.handle_timer(T0 + 1000) is Step.WAIT  # deciding has no deadline
    assert s.request is not None and s.request.args == ("0612000001", "legacy")
    assert s.handler is routes.ROUTES[routes.Route.CHECK] and s.reads == ()


@pytest.mark.parametrize(("data", "kind"), [
    (b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n", ErrorKind.PROTOCOL),
    (b"agi_x: " + b"A" * 20000, ErrorKind.HEADER_TOO_LARGE),
])
def test_bytes_that_are_not_fastagi_cut_at_once(data: bytes, kind: ErrorKind) -> None:
    s = session()
    assert s.receive_data(data, T0) is Step.ABORT and s.cut is not None and s.cut.kind is kind


def test_end_of_stream_inside_the_block() -> None:
    s = session()
    s.receive_data(ENV[:10], T0)
    assert s.receive_eof(T0) is Step.ABORT and s.cut is not None and s.cut.kind is ErrorKind.EOF


# -- replies ----------------------------------------------------------------------------------------------------

def test_each_reply_has_its_own_deadline_from_its_command() -> None:
    s = deciding("set_variable")
    assert s.answer(SETS, T0 + 0.5) is Step.SEND
    assert s.outgoing == b'SET VARIABLE DNC_REASON "opposition_list"\n' and s.get_timer() == T0 + 0.5 + TIMEOUT
    assert s.receive_data(b"200 result=1\n", T0 + 2.4) is Step.SEND  # in time: the next command's own deadline
    assert s.outgoing.startswith(b"SET VARIABLE DNC_DECISION_ID") and s.get_timer() == T0 + 2.4 + TIMEOUT
    # The transport's one timer, armed for the first command, fires: not due, re-armed at the new deadline.
    assert s.handle_timer(T0 + 0.5 + TIMEOUT) is Step.WAIT
    assert s.handle_timer(T0 + 2.4 + TIMEOUT) is Step.ABORT
    assert s.cut is not None and (s.cut.kind, s.cut.message) == (ErrorKind.TIMEOUT, "no reply within 2s (set)")
    assert not s.ok


def test_mset_answer_is_one_command_then_close() -> None:
    s = deciding()
    assert s.answer(SETS, T0 + 1) is Step.SEND
    assert s.outgoing == b'EXEC MSet "DNC_REASON=opposition_list,DNC_DECISION_ID=abc,DNC_WOULD_BLOCK=1,' \
                         b'DNC_VERDICT=BLOCK"\n'
    assert s.receive_data(b"200 result=0\n", T0 + 1.2) is Step.CLOSE
    assert s.phase is Phase.DONE and s.ok and s.get_timer() is None
    assert s.receive_data(b"HANGUP\n", T0 + 1.3) is Step.WAIT and s.hangup  # Asterisk's late HANGUP
    assert s.receive_eof(T0 + 1.3) is Step.WAIT  # its close after the answer is the normal end


def test_reads_back_channel_variables_with_a_deadline_each() -> None:
    s = session()
    assert s.receive_data(env_block(), T0) is Step.SEND  # no number in the arguments
    assert s.phase is Phase.READ and s.outgoing == b"GET VARIABLE DNC_NUMBER\n" and s.get_timer() == T0 + TIMEOUT
    assert s.receive_data(b"HANGUP\n200 result=1 (0612000200)\n", T0 + 1) is Step.SEND  # HANGUP shifts nothing
    assert s.hangup and s.outgoing == b"GET VARIABLE DNC_CAMPAIGN\n" and s.get_timer() == T0 + 1 + TIMEOUT
    assert s.receive_data(b"200 result=1 (legacy)\n", T0 + 2) is Step.SEND
    assert s.receive_data(b"200 result=0\n", T0 + 3) is Step.DECIDE and s.get_timer() is None
    assert s.values == {"DNC_NUMBER": "0612000200", "DNC_CAMPAIGN": "legacy", "DNC_CALLER_ID": None}


def test_unanswered_read_times_out() -> None:
    s = session()
    s.receive_data(env_block(), T0)
    assert s.handle_timer(T0 + TIMEOUT) is Step.ABORT
    assert s.cut is not None and s.cut.message == "no reply within 2s (read)"


def test_asterisk_closing_before_the_answer() -> None:
    s = deciding()
    assert s.receive_eof(T0 + 1) is Step.ABORT
    assert s.cut is not None and (s.cut.kind, s.cut.message) == (
        ErrorKind.HANGUP, "Asterisk closed the connection (decide)")


def test_events_that_came_while_deciding_are_read_with_the_answer() -> None:
    s = session()
    assert s.receive_data(ENV + b"HANGUP\n", T0) is Step.DECIDE and not s.hangup  # waits for the answer
    assert s.answer(SETS, T0 + 1) is Step.SEND and s.hangup


def test_garbage_instead_of_a_reply() -> None:
    s = deciding()
    s.answer(SETS, T0)
    assert s.receive_data(b"what?\n", T0) is Step.ABORT and s.cut is not None and s.cut.kind is ErrorKind.PROTOCOL


def test_unknown_route_fails_closed_without_reading_anything() -> None:
    s = deciding(env=env_block(script="chekc", args=("0612000050",)))
    assert s.handler is routes.UNKNOWN and s.reads == ()


def test_answer_only_when_deciding() -> None:
    with pytest.raises(RuntimeError, match="phase env"):
        session().answer(SETS, T0)


def test_fail_says_failure_and_is_not_ok() -> None:
    s = deciding()
    assert s.fail() is Step.FAIL and s.outgoing == FAILURE == b"FAILURE\n"
    assert not s.ok and s.get_timer() is None


# -- refused connections and the drain -------------------------------------------------------------------------

def test_refused_connection_is_cut_if_asterisk_does_not_close() -> None:
    s = session()
    assert s.refuse(T0 + 1) is Step.REFUSE and s.outgoing == FAILURE
    assert s.get_timer() == T0 + 1 + TIMEOUT and s.handle_timer(T0 + 2) is Step.WAIT
    assert s.handle_timer(T0 + 1 + TIMEOUT) is Step.ABORT
    assert s.cut is not None and s.cut.kind is None  # not an error: the overload was counted when refused


def test_drain_cuts_at_its_deadline_in_any_phase() -> None:
    s = deciding("set_variable")
    s.drain(T0 + 5)
    assert s.get_timer() == T0 + 5 and s.handle_timer(T0 + 4.9) is Step.WAIT  # deciding: only the drain
    s.answer(SETS, T0 + 4)  # a reply deadline at T0 + 6, after the drain's
    assert s.get_timer() == T0 + 5
    s.drain(T0 + 7)  # a later drain deadline does not push the first one back
    assert s.get_timer() == T0 + 5
    assert s.handle_timer(T0 + 5) is Step.ABORT
    assert s.cut is not None and s.cut.kind is None and s.cut.message == "still open at the end of the drain (set)"


def test_a_reply_deadline_before_the_drain_is_still_a_timeout() -> None:
    s = deciding()
    s.answer(SETS, T0)
    s.drain(T0 + 10)
    assert s.get_timer() == T0 + TIMEOUT
    assert s.handle_timer(T0 + TIMEOUT) is Step.ABORT and s.cut is not None and s.cut.kind is ErrorKind.TIMEOUT


def test_drain_after_the_answer() -> None:
    s = deciding()
    s.answer(SETS, T0)
    s.receive_data(b"200 result=0\n", T0)
    s.drain(T0 + 1)  # answered, the close not seen yet: the drain still bounds it
    assert s.get_timer() == T0 + 1 and s.handle_timer(T0 + 1) is Step.ABORT


# -- the answer as typed commands ---------------------------------------------------------------------------------

def test_answer_commands_are_typed_and_encode_to_the_same_bytes() -> None:
    assert answer(SETS, Answer.MSET) == (ExecMSet(SETS),)
    assert answer(SETS, Answer.SET_VARIABLE) == tuple(SetVariable(n, v) for n, v in SETS)
    assert answer((("DNC_RESULT", "OK"),), "mset") == (SetVariable("DNC_RESULT", "OK"),)  # one variable: no MSet
    assert answer((("A", "x,y"), ("B", "1")), "mset") == (SetVariable("A", "x,y"), SetVariable("B", "1"))
    assert answer_commands(SETS, "mset") == [(str(mset(SETS)) + "\n").encode()]
    assert answer_commands(SETS, "set_variable") == [(set_variable(n, v) + "\n").encode() for n, v in SETS]
    assert GetVariable("CALLERID(num)").encode() == (get_variable("CALLERID(num)") + "\n").encode()


# -- Asterisk 23.4.1's captured sessions, without sockets ----------------------------------------------------------

_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{22}(?![0-9a-f])")


@pytest.mark.parametrize("captured", captured_sessions(), ids=lambda c: c.label)
async def test_captured_sessions_byte_for_byte(gateway: Gateway, captured: Captured) -> None:
    """Asterisk's segments in, the gateway's out: the same bytes (decision ids aside), the same steps."""
    s = session(captured.answer)
    now = T0
    sent: list[bytes] = []
    expected = [data for who, data in captured.segments if who == "G" and data not in (b"FIN", b"RST")]
    for who, data in captured.segments:
        if who != "A" or data in (b"FIN", b"RST") or s.phase is Phase.DONE:
            continue
        now += 0.001
        step = s.receive_data(data, now)
        if step is Step.DECIDE:
            assert s.request is not None
            res = s.handler.run(s.request, s.values, gateway)
            step = s.answer(res if isinstance(res, tuple) else await res, now)
        if step is Step.SEND:
            sent.append(s.outgoing)
        else:
            assert step in (Step.WAIT, Step.CLOSE)
    assert [_ID.sub("<id>", b.decode()) for b in sent] == [_ID.sub("<id>", b.decode()) for b in expected]
    assert s.ok and s.phase is Phase.DONE
