"""Asterisk's side of FastAGI, checked against what Asterisk 23.4.1 really sent and answered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.replay.fastagi import AgiProtocolError, AsteriskAgi, ChannelInfo, env_block, parse_args, run_session

FIXTURE = Path(__file__).parent.parent / "fixtures" / "asterisk-23.4.1" / "fastagi-sessions.txt"


def recorded_sessions() -> list[list[tuple[str, str]]]:
    """Each session as (who, line) pairs, who being "A" (Asterisk) or "G" (gateway)."""
    sessions: list[list[tuple[str, str]]] = []
    for raw in FIXTURE.read_text().split("\n"):
        if raw.startswith("# session"):
            sessions.append([])
        elif raw[:3] in ("A> ", "G> ") or raw in ("A>", "G>"):
            sessions[-1].append((raw[0], raw[3:]))
    return sessions


def recorded_info(session: list[tuple[str, str]]) -> ChannelInfo:
    env: dict[str, str] = {}
    for who, line in session:
        if who == "A" and line.startswith("agi_"):
            key, _, value = line.partition(": ")
            env[key.rstrip(":")] = value
    args = tuple(env[k] for k in sorted(k for k in env if k.startswith("agi_arg_")))
    return ChannelInfo(request=env["agi_request"], script=env["agi_network_script"], args=args,
                       channel=env["agi_channel"], uniqueid=env["agi_uniqueid"], callerid=env["agi_callerid"],
                       calleridname=env["agi_calleridname"], dnid=env["agi_dnid"], context=env["agi_context"],
                       extension=env["agi_extension"], threadid=int(env["agi_threadid"]))


@pytest.mark.parametrize("index", [0, 1])
def test_env_block_is_byte_for_byte_asterisks(index: int) -> None:
    session = recorded_sessions()[index]
    expected = []
    for who, line in session:
        if who != "A":
            break
        expected.append(line)
    assert env_block(recorded_info(session)) == ("\n".join(expected) + "\n").encode()
    assert expected[-1] == ""  # the blank line that ends the block


def test_replies_match_the_recorded_session() -> None:
    session = recorded_sessions()[0]
    agi = AsteriskAgi(recorded_info(session))
    agi.start()
    i = next(n for n, (who, _) in enumerate(session) if who == "G")
    while i < len(session):
        command = session[i][1]
        j = i + 1
        while j < len(session) and session[j][0] == "A":
            j += 1
        expected = "".join(line + "\n" for _, line in session[i + 1:j])
        assert agi.receive_data(command.encode() + b"\n").decode() == expected, command
        i = j
    assert agi.variables["DNC_VERDICT"] == "BLOCK" and agi.variables["DNC_REASON"] == "opposition_list"
    assert agi.receive_data(b"") == b"HANGUP\n" and agi.variables["AGISTATUS"] == "SUCCESS"
    # what a real dialplan would have suffered: the unknown command, the bad SET VARIABLE, nothing else
    assert [e[-5:] for e in agi.errors] == ["(510)", "(520)"]


@pytest.mark.parametrize(("line", "argv"), [
    ('SET VARIABLE DNC_VERDICT "BLOCK"', ["SET", "VARIABLE", "DNC_VERDICT", "BLOCK"]),
    ('SET VARIABLE X "two words"', ["SET", "VARIABLE", "X", "two words"]),
    ('SET VARIABLE X ""', ["SET", "VARIABLE", "X", ""]),
    (r'SET VARIABLE X "say \"hi\""', ["SET", "VARIABLE", "X", 'say "hi"']),
    (r"SET VARIABLE X a\ b", ["SET", "VARIABLE", "X", "a b"]),
    ('SET VARIABLE X "ALLOW"\r', ["SET", "VARIABLE", "X", "ALLOW\r"]),  # CRLF: the CR stays in the value
    ("  VERBOSE \t hi  ", ["VERBOSE", "hi"]),
    ('SET VARIABLE X ab"c d"e', ["SET", "VARIABLE", "X", "abc de"]),
])
def test_parse_args_like_res_agi(line: str, argv: list[str]) -> None:
    assert parse_args(line) == argv


def test_a_command_has_at_most_127_words_as_in_res_agi() -> None:
    """res/res_agi.c (Asterisk master f0c1c1a7b79b, 2026-08-06): ``#define MAX_ARGS 128`` (line 1516);
    ``agi_handle_command`` passes ``const char *argv[MAX_ARGS]`` to ``parse_args`` (lines 4200-4215), which stops
    starting words at ``if (x >= MAX_ARGS -1) { ast_log(LOG_WARNING, "Too many arguments, truncating\\n");
    break; }`` (line 4167). So a 200-word line gives 127 words, the rest of the line dropped; only a quote right
    after white space still starts one more (that path has no check, lines 4138-4141).
    """
    words = [f"w{i}" for i in range(200)]
    assert parse_args(" ".join(words)) == words[:127]
    assert parse_args(" ".join(words) + ' "q"') == [*words[:127], "q"]
    agi = _agi()
    agi.receive_data(("VERBOSE " + " ".join(words[1:]) + "\n").encode())
    assert len(parse_args(agi.commands[-1])) == 127


def test_at_most_127_agi_args_the_last_one_the_rest() -> None:
    """AGI()'s data is split by ``AST_STANDARD_APP_ARGS`` into ``AST_APP_ARG(arg)[MAX_ARGS]`` (res_agi.c
    ``agi_exec_full``); main/app.c ``__ast_app_separate_args`` fills at most ``arraylen - 1`` pieces
    (``argc < arraylen - 1``, app.c line 2375), then puts the unsplit rest in one more; ``setup_env`` writes
    ``agi_arg_%d`` for ``count = 1; count < argc`` (res_agi.c lines 2488-2489), ``arg[0]`` being the script:
    127 ``agi_arg_N`` at most.
    """
    args = tuple(f"a{i}" for i in range(1, 201))
    block = env_block(ChannelInfo("agi://h/check", "check", args)).decode()
    lines = [line for line in block.split("\n") if line.startswith("agi_arg_")]
    assert len(lines) == 127 and lines[125] == "agi_arg_126: a126"
    assert lines[126] == "agi_arg_127: " + ",".join(args[126:])
    assert env_block(ChannelInfo("agi://h/check", "check", args[:127])).count(b"agi_arg_") == 127


def _agi() -> AsteriskAgi:
    agi = AsteriskAgi(ChannelInfo("agi://h:1/check", "check", ("0612000001", "prospect")), {"CAMPAIGN": "x"})
    agi.start()
    return agi


def test_commands_split_over_reads_and_batched() -> None:
    agi = _agi()
    assert agi.receive_data(b"SET VARIABLE A 1\nSET VARI") == b"200 result=1\n"
    assert agi.receive_data(b"ABLE B 2\nGET VARIABLE CAMPAIGN\n") == b"200 result=1\n200 result=1 (x)\n"
    assert agi.variables["A"] == "1" and agi.variables["B"] == "2"
    assert agi.receive_data(b"set variable c 3\n") == b"200 result=1\n"  # case-insensitive commands


def test_exec_mset_sets_every_pair_even_on_a_dead_channel() -> None:
    agi = _agi()
    assert agi.receive_data(b'EXEC MSet "DNC_REASON=,DNC_VERDICT=ALLOW"\n') == b"200 result=0\n"
    assert agi.variables["DNC_REASON"] == "" and agi.variables["DNC_VERDICT"] == "ALLOW"
    agi.receive_data(b"HANGUP\n")
    assert agi.receive_data(b'EXEC MSet "A=1"\n') == b"200 result=0\n"  # EXEC is a dead-mode command
    assert agi.variables["A"] == "1"


def test_hangup_then_dead_channel() -> None:
    agi = _agi()
    assert agi.receive_data(b"HANGUP\n") == b"200 result=1\nHANGUP\n"
    # agi_handle_command()'s text for a command without the dead flag (res_agi.c, as the fake Asterisk had it)
    assert agi.receive_data(b"ANSWER\n") == b"511 Command Not Permitted on a dead channel or intercept routine\n"
    assert agi.receive_data(b"SET VARIABLE X 1\n") == b"200 result=1\n"
    assert agi.receive_data(b"") == b"HANGUP\n" and agi.variables["AGISTATUS"] == "HANGUP"


def test_failure_line_ends_the_session() -> None:
    agi = _agi()
    assert agi.receive_data(b"FAILURE\nSET VARIABLE X 1\n") == b"HANGUP\n"
    assert agi.closed and agi.variables["AGISTATUS"] == "FAILURE" and "X" not in agi.variables
    assert agi.receive_data(b"more") == b""


def test_overlong_line_and_non_utf8() -> None:
    agi = _agi()
    agi.receive_data(b"VERBOSE " + b"x" * 3000 + b"\n")
    agi.receive_data(b"VERBOSE \xff\n")
    assert any("longer than" in e for e in agi.errors) and any("UTF-8" in e for e in agi.errors)


# -- over real sockets, against a tiny FastAGI server --------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def fake_server(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def read_env(reader: asyncio.StreamReader) -> dict[str, str]:
    env: dict[str, str] = {}
    while True:
        line = (await asyncio.wait_for(reader.readline(), 2)).decode()
        if line in ("\n", ""):
            return env
        key, _, value = line.rstrip("\n").partition(": ")
        env[key] = value


def verdict_server(seen: dict[str, object]) -> Handler:
    """Speaks like the gateway: env block in, four SET VARIABLE out (reading each reply), close."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env = await read_env(reader)
        seen["env"] = env
        replies = []
        for name, value in (("DNC_REASON", "opposition_list"), ("DNC_DECISION_ID", "abc123"),
                            ("DNC_WOULD_BLOCK", "1"), ("DNC_VERDICT", "BLOCK")):
            writer.write(f'SET VARIABLE {name} "{value}"\n'.encode())
            replies.append((await asyncio.wait_for(reader.readline(), 2)).decode())
        seen["replies"] = replies
        writer.write_eof()  # half-close, to see what Asterisk says last
        seen["last"] = await asyncio.wait_for(reader.read(), 2)
        writer.close()

    return handle


async def test_session_against_a_fake_gateway() -> None:
    seen: dict[str, object] = {}
    info = ChannelInfo("agi://127.0.0.1:1/check", "check", ("0612000001", "prospect", "0162000000"),
                       callerid="0162000000", dnid="0612000001", extension="0612000001")
    async with fake_server(verdict_server(seen)) as port:
        session = await run_session("127.0.0.1", port, info, session_timeout=3)
    env = seen["env"]
    assert isinstance(env, dict)
    assert env["agi_network_script"] == "check" and env["agi_arg_1"] == "0612000001"
    assert env["agi_arg_2"] == "prospect" and env["agi_arg_3"] == "0162000000"
    assert env["agi_callerid"] == "0162000000" and env["agi_calleridname"] == "unknown"
    assert seen["replies"] == ["200 result=1\n"] * 4
    for _ in range(200):  # the server's handler finishes on its own task
        if "last" in seen:
            break
        await asyncio.sleep(0.01)
    assert seen["last"] == b"HANGUP\n"
    assert session.variables["DNC_VERDICT"] == "BLOCK" and session.variables["DNC_DECISION_ID"] == "abc123"
    assert session.errors == () and session.verdict_seconds is not None and session.seconds < 3


async def test_unreachable_gateway() -> None:
    async with fake_server(verdict_server({})) as port:
        pass  # closed: nothing listens there any more
    with pytest.raises(AgiProtocolError) as e:
        await run_session("127.0.0.1", port, ChannelInfo("agi://x/check", "check", ("1",)))
    assert e.value.kind == "unreachable" and "cannot connect" in str(e.value)


async def test_gateway_that_never_closes_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_env(reader)
        await asyncio.sleep(5)

    async with fake_server(silent) as port:
        with pytest.raises(AgiProtocolError) as e:
            await run_session("127.0.0.1", port, ChannelInfo("agi://x/check", "check", ("1",)),
                              session_timeout=0.3)
    assert e.value.kind == "timeout"


async def test_garbage_from_the_gateway_is_reported() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_env(reader)
        writer.write(b"HELLO THERE\nSET VARIABLE DNC_VERDICT ALLOW\r\n")
        await writer.drain()
        await asyncio.wait_for(reader.readline(), 2)
        await asyncio.wait_for(reader.readline(), 2)
        writer.close()

    async with fake_server(garbage) as port:
        session = await run_session("127.0.0.1", port, ChannelInfo("agi://x/check", "check", ("1",)))
    assert session.variables["DNC_VERDICT"] == "ALLOW\r"  # what the dialplan would compare, and fail
    assert session.errors == ("invalid or unknown command 'HELLO THERE' (510)",)
