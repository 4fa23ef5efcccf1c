"""The sans-I/O FastAGI core against Asterisk 23.4.1's recorded bytes and res_agi.c's formats."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.agi.protocol import (
    NEED_DATA,
    AgiConnection,
    AgiRequest,
    Closed,
    Hangup,
    ProtocolError,
    Reply,
    State,
    get_variable,
    parse_reply,
    quote,
    set_variable,
)
from gateway.replay.fastagi import parse_args
from tests.agi.fake_asterisk import env_block, recorded_sessions


def started(**kw: int) -> AgiConnection:
    """A connection past its environment block, ready for a command."""
    conn = AgiConnection(**kw)
    conn.receive_data(env_block())
    assert isinstance(conn.next_event(), AgiRequest)
    return conn


def replay(recorded_index: int, chunk: int) -> list[object]:
    """Play a recorded session through AgiConnection, Asterisk's bytes fed ``chunk`` bytes at a time."""
    rec = recorded_sessions()[recorded_index]
    conn = AgiConnection()
    events: list[object] = []
    pending = b""
    for who, line in rec.lines:
        if who == "A":
            pending += line.encode() + b"\n"
            continue
        # The gateway speaks: first deliver what Asterisk sent before, then send the command.
        for i in range(0, len(pending), chunk):
            conn.receive_data(pending[i:i + chunk])
            while (ev := conn.next_event()) is not NEED_DATA:
                events.append(ev)
        pending = b""
        assert conn.send(line) == line.encode() + b"\n"
    conn.receive_data(pending)
    conn.receive_data(b"")
    while not isinstance(ev := conn.next_event(), Closed):
        if ev is not NEED_DATA:
            events.append(ev)
    events.append(ev)
    return events


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_recorded_session_1(chunk: int) -> None:
    events = replay(0, chunk)
    req = events[0]
    assert isinstance(req, AgiRequest)
    assert req.network and req.script == "check" and req.request == "agi://127.0.0.1:4599/check"
    assert req.args == ("0612000001", "prospect")
    assert req.channel == "PJSIP/sipp-00000005" and req.uniqueid == "1795418477.5"
    assert req.env["agi_accountcode"] == "" and req.env["agi_threadid"] == "140618572904128"
    replies = events[1:-1]
    assert all(isinstance(r, Reply) for r in replies)
    assert [(r.code, r.result, r.data) for r in replies] == [  # type: ignore[attr-defined]
        (200, "1", None), (200, "1", None), (200, "1", "BLOCK"), (200, "0", None),
        (200, "1", "PJSIP/sipp-00000005"), (510, None, None), (520, None, None), (200, "-1", None), (200, "1", None)]
    usage = replies[6]
    assert isinstance(usage, Reply)
    assert usage.usage == ("Sets a variable to the current channel.",) and usage.text == "End of proper usage."
    gosub = replies[7]
    assert isinstance(gosub, Reply) and gosub.text == "Gosub label not found" and gosub.result_int == -1
    assert isinstance(events[-1], Closed)


@pytest.mark.parametrize("chunk", [1, 4096])
def test_recorded_session_2_hangup_does_not_shift_replies(chunk: int) -> None:
    events = replay(1, chunk)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["AgiRequest", "Reply", "Hangup", "Reply", "Reply", "Closed"]
    wait, set_reply, get_reply = (e for e in events if isinstance(e, Reply))
    assert wait.result == "-1" and set_reply.result == "1"
    assert get_reply.data == "ALLOW"  # the reply to GET, not to the SET before it


def test_hangup_makes_the_connection_dead_and_may_come_between_commands() -> None:
    conn = AgiConnection()
    conn.receive_data(env_block(args=("1",)))
    assert isinstance(conn.next_event(), AgiRequest)
    conn.receive_data(b"HANGUP\n")
    assert isinstance(conn.next_event(), Hangup) and conn.dead
    conn.send("ANSWER")
    conn.receive_data(b"511 Command Not Permitted on a dead channel or intercept routine\n")
    r = conn.next_event()
    assert isinstance(r, Reply) and r.code == 511 and conn.state is State.IDLE


def test_trying_is_skipped_and_the_real_reply_returned() -> None:
    conn = started()
    conn.send("GOSUB sub s 1")
    conn.receive_data(b"100 result=0 Trying...\n")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"200 result=0 Gosub complete\n")
    r = conn.next_event()
    assert isinstance(r, Reply) and r.result == "0" and r.text == "Gosub complete"


@pytest.mark.parametrize(("line", "code", "result", "data", "fields", "text"), [
    ("200 result=1", 200, "1", None, {}, ""),
    ("200 result=1 (ALLOW)", 200, "1", "ALLOW", {}, ""),
    ("200 result=1 (a (b) c)", 200, "1", "a (b) c", {}, ""),
    ("200 result= (timeout)", 200, "", "timeout", {}, ""),
    ("200 result=0 endpos=12345", 200, "0", None, {"endpos": "12345"}, ""),
    ("200 result=49 (dtmf) endpos=800", 200, "49", "dtmf", {"endpos": "800"}, ""),
    ("200 result=1 (digit) digit=5 endpos=99", 200, "1", "digit", {"digit": "5", "endpos": "99"}, ""),
    ("200 result=1 (speech) endpos=5 results=2 a b", 200, "1", "speech", {"endpos": "5", "results": "2"}, "a b"),
    ("200 result=-1 Gosub label not found", 200, "-1", None, {}, "Gosub label not found"),
    ("503 result=-2 Memory allocation failure", 503, "-2", None, {}, "Memory allocation failure"),
    ("510 Invalid or unknown command", 510, None, None, {}, "Invalid or unknown command"),
    ("520 Invalid command syntax.  Proper usage not available.", 520, None, None, {},
     "Invalid command syntax.  Proper usage not available."),
])
def test_reply_formats_of_res_agi(line: str, code: int, result: str | None, data: str | None,
                                  fields: dict[str, str], text: str) -> None:
    r = parse_reply(line)
    assert (r.code, r.result, r.data, dict(r.fields), r.text) == (code, result, data, fields, text)


def test_endpos_property() -> None:
    assert parse_reply("200 result=0 endpos=12345").endpos == 12345
    assert parse_reply("200 result=0").endpos is None


def test_query_string_is_not_part_of_the_route() -> None:
    conn = AgiConnection()
    conn.receive_data(env_block(script="check?campaign=spring&number=0612000001&x="))
    req = conn.next_event()
    assert isinstance(req, AgiRequest)
    assert req.script == "check" and dict(req.query) == {"campaign": "spring", "number": "0612000001", "x": ""}


@pytest.mark.parametrize(("request_url", "script", "query"), [
    ("agi://127.0.0.1:4573/check", "check", {}),
    ("agi://gw1/optout?campaign=spring", "optout", {"campaign": "spring"}),
    ("agi://[::1]:4573//check/", "check", {}),
])
def test_without_agi_network_script_the_route_is_the_path_of_agi_request(request_url: str, script: str,
                                                                          query: dict[str, str]) -> None:
    """Issue 15 #14: a client sending only agi_request got unknown_route."""
    conn = AgiConnection()
    conn.receive_data(f"agi_network: yes\nagi_request: {request_url}\nagi_channel: PJSIP/a-1\n"
                      "agi_arg_1: 0612000001\n\n".encode())
    req = conn.next_event()
    assert isinstance(req, AgiRequest)
    assert (req.script, dict(req.query), req.args) == (script, query, ("0612000001",))


def test_agi_network_script_wins_over_agi_request() -> None:
    conn = AgiConnection()
    conn.receive_data(b"agi_network: yes\nagi_network_script: refusal\nagi_request: agi://gw/check\n\n")
    req = conn.next_event()
    assert isinstance(req, AgiRequest) and req.script == "refusal"


def test_argument_gaps_and_empty_arguments() -> None:
    conn = AgiConnection()
    conn.receive_data(b"agi_network: yes\nagi_arg_1: 0612000001\nagi_arg_2: \nagi_arg_4: x\n\n")
    req = conn.next_event()
    assert isinstance(req, AgiRequest)
    assert req.args == ("0612000001", "", "", "x") and req.arg(2) == "" and req.arg(9) == "" and req.script == ""


def test_crlf_line_ends_tolerated() -> None:
    conn = AgiConnection()
    conn.receive_data(env_block(args=("1", "c")).replace(b"\n", b"\r\n"))
    req = conn.next_event()
    assert isinstance(req, AgiRequest) and req.args == ("1", "c") and req.script == "check"


def test_non_utf8_is_decoded_with_replacement() -> None:
    conn = AgiConnection()
    conn.receive_data(env_block(args=("0612000001",)).replace(b"agi_calleridname: sipp", b"agi_calleridname: Ren\xe9"))
    req = conn.next_event()
    assert isinstance(req, AgiRequest)
    assert req.env["agi_calleridname"] == "Ren\ufffd"


def test_end_of_stream_before_blank_line_is_a_clear_error() -> None:
    conn = AgiConnection()
    conn.receive_data(b"agi_network: yes\nagi_network_scr")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(ProtocolError, match="closed before the end of the environment block") as e:
        conn.next_event()
    assert e.value.kind == "eof" and conn.state is State.CLOSED


def test_header_limit() -> None:
    block = env_block(args=("0612000001", "prospect"))
    ok = AgiConnection(header_limit=len(block))
    ok.receive_data(block)
    assert isinstance(ok.next_event(), AgiRequest)
    small = AgiConnection(header_limit=100)
    small.receive_data(block)
    with pytest.raises(ProtocolError, match="larger than 100") as e:
        small.next_event()
    assert e.value.kind == "header_too_large"
    endless = AgiConnection(header_limit=1000)
    for _ in range(20):
        endless.receive_data(b"agi_x: " + b"y" * 90 + b"\n")
        try:
            assert endless.next_event() is NEED_DATA
        except ProtocolError as err:
            assert err.kind == "header_too_large"
            break
    else:
        pytest.fail("no error past the limit")


@pytest.mark.parametrize("bad", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\n", b"agi_network yes\n\n", b"\x00\x01\n\n"])
def test_not_fastagi(bad: bytes) -> None:
    conn = AgiConnection()
    conn.receive_data(bad)
    with pytest.raises(ProtocolError):
        conn.next_event()


def test_reply_errors() -> None:
    conn = started()
    conn.receive_data(b"200 result=1\n")
    with pytest.raises(ProtocolError, match="no command in flight"):
        conn.next_event()
    conn = started()
    conn.send("VERBOSE x")
    conn.receive_data(b"hello\n")
    with pytest.raises(ProtocolError, match="CODE result"):
        conn.next_event()
    conn = started(reply_limit=64)
    conn.send("GET VARIABLE X")
    conn.receive_data(b"200 result=1 (" + b"x" * 100)
    with pytest.raises(ProtocolError, match="longer than 64"):
        conn.next_event()


def test_eof_in_the_middle_of_a_reply() -> None:
    conn = started()
    conn.send("SET VARIABLE")
    conn.receive_data(b"520-Invalid command syntax.  Proper usage follows:\nSets a variable\n")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(ProtocolError, match="520"):
        conn.next_event()


def test_send_rules() -> None:
    conn = AgiConnection()
    with pytest.raises(RuntimeError):
        conn.send("ANSWER")
    conn.receive_data(env_block())
    conn.next_event()
    with pytest.raises(ValueError, match="line break"):
        conn.send("VERBOSE a\nHANGUP")
    with pytest.raises(ValueError, match="cut"):
        conn.send("VERBOSE " + "x" * 3000)
    conn.send("ANSWER")
    with pytest.raises(RuntimeError, match="already waiting"):
        conn.send("ANSWER")


def test_common_replies_taken_whole_or_not_at_all() -> None:
    """The shortcut gives what receive_data + next_event would, and takes nothing it cannot be sure of."""
    conn = AgiConnection()
    assert conn.receive_common(b"200 result=1\n") is None  # still reading the env block
    conn.receive_data(env_block())
    conn.next_event()
    assert conn.receive_common(b"200 result=1\n") is None  # no command in flight: not a reply
    conn.send("SET VARIABLE A 1")
    for line in (b"200 result=1", b"200 result=1\nHANGUP\n", b"HANGUP\n", b"200 result=1 (x)\n"):
        assert conn.receive_common(line) is None and conn.state is State.AWAITING
    assert conn.receive_common(b"200 result=1\n") == Reply(200, "1") and conn.state is State.IDLE
    conn.send("EXEC MSet A=1,B=2")
    assert conn.receive_common(b"200 result=0\n") == Reply(200, "0") and conn.state is State.IDLE
    conn.send("SET VARIABLE A 1")
    conn.receive_data(b"200 ")  # part of a reply already buffered: the shortcut must not skip it
    assert conn.receive_common(b"200 result=1\n") is None


def test_receive_after_eof() -> None:
    conn = AgiConnection()
    conn.receive_data(b"")
    conn.receive_data(b"")  # idempotent
    with pytest.raises(ProtocolError):
        conn.receive_data(b"x")


def test_set_and_get_variable_commands() -> None:
    assert set_variable("DNC_REASON", "") == 'SET VARIABLE DNC_REASON ""'
    assert set_variable("X", 'a "b" \\c') == 'SET VARIABLE X "a \\"b\\" \\\\c"'
    assert get_variable("CALLERID(num)") == "GET VARIABLE CALLERID(num)"
    with pytest.raises(ValueError):
        set_variable("A B", "x")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\0")))
def test_quote_round_trips_through_res_agi_parse_args(value: str) -> None:
    argv = parse_args(set_variable("V", value))
    assert argv == ["SET", "VARIABLE", "V", value]


def test_quote_replaces_line_breaks() -> None:
    assert quote("a\nb\rc") == '"a b c"'


def test_mset_packs_safe_values_and_refuses_the_others() -> None:
    from gateway.agi.protocol import mset

    assert mset([("DNC_REASON", ""), ("DNC_VERDICT", "ALLOW")]) == 'EXEC MSet "DNC_REASON=,DNC_VERDICT=ALLOW"'
    for bad in ("a,b", "a b", 'q"', "back\\slash", "x=y", "line\nbreak", "nul\0", "tab\t"):
        assert mset([("DNC_REASON", bad)]) is None
        assert mset([("DNC_VERDICT", "ALLOW"), ("DNC_REASON", bad)]) is None  # whichever pair it is in
    assert mset([("A,B", "1")]) is None and mset([("A=B", "1")]) is None
    with pytest.raises(ValueError):
        mset([("BAD NAME", "1")])


@given(st.lists(st.tuples(st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True),
                          st.text(alphabet=st.characters(codec="utf-8"), max_size=12)), min_size=1, max_size=5))
def test_mset_reads_back_as_the_same_pairs(pairs: list[tuple[str, str]]) -> None:
    """What res_agi.c's parse_args then MSet's comma and "=" splitting make of the command: the pairs sent."""
    from gateway.agi.protocol import mset

    command = mset(pairs)
    if command is None:  # only when a value holds what MSet would split on or parse_args would eat
        assert any(re.search(r'[,="\\\s\0]', v) for _, v in pairs)
        return
    argv = parse_args(command)
    assert argv[:2] == ["EXEC", "MSet"] and len(argv) == 3
    assert [tuple(p.split("=", 1)) for p in argv[2].split(",")] == [tuple(p) for p in pairs]
