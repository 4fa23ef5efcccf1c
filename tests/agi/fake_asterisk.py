"""Asterisk's side of FastAGI, byte for byte, for tests.

The environment blocks come from the recordings in tests/fixtures/asterisk-23.4.1/fastagi-sessions.txt;
the replies are the product's FastAGI client's (:mod:`gateway.replay.fastagi`, what res/res_agi.c writes:
``200 result=1``, ``200 result=1 (value)``, ``200 result=0``, ``510 Invalid or unknown command``, an inline
``HANGUP`` once the channel is gone), so the protocol is parsed in one place. What this module adds is how
Asterisk puts them on the socket: as in fastagi-gateway-sessions.txt (Asterisk 23.4.1 against this gateway),
the environment block goes one line per write, and ``HANGUP`` follows the gateway's close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from gateway.agi.protocol import parse_env
from gateway.replay.fastagi import AsteriskAgi, ChannelInfo

__all__ = ["CallResult", "Captured", "Recorded", "answer", "call", "captured_sessions", "channel_info",
           "env_block", "recorded_sessions"]

FIXTURES = Path(__file__).parent.parent / "fixtures" / "asterisk-23.4.1"
FIXTURE = FIXTURES / "fastagi-sessions.txt"
GATEWAY_FIXTURE = FIXTURES / "fastagi-gateway-sessions.txt"


@dataclass(frozen=True)
class Captured:
    """One session of fastagi-gateway-sessions.txt: TCP segments in order, ("A" | "G", bytes, or b"FIN" / b"RST")."""

    label: str
    answer: str  # the gateway's [agi] answer
    segments: tuple[tuple[str, bytes], ...]


def captured_sessions() -> list[Captured]:
    out: list[Captured] = []
    for chunk in GATEWAY_FIXTURE.read_text(encoding="utf-8").split("# session: ")[1:]:
        head, *lines = chunk.split("\n")
        segments = []
        for line in lines:
            if line[:2] in ("A ", "G "):
                rest = line[2:]
                segments.append((line[0], rest.encode() if rest in ("FIN", "RST") else json.loads(rest).encode()))
        out.append(Captured(head.partition(" (")[0], head.rpartition("answer = ")[2].rstrip(")"), tuple(segments)))
    return out


@dataclass(frozen=True)
class Recorded:
    lines: tuple[tuple[str, str], ...]  # ("A" | "G", line without its newline)

    @property
    def env(self) -> bytes:
        """The environment block exactly as Asterisk sent it, blank line included."""
        out = []
        for who, line in self.lines:
            if who != "A":
                break
            out.append(line + "\n")
            if line == "":
                break
        return "".join(out).encode()


def recorded_sessions() -> list[Recorded]:
    sessions: list[Recorded] = []
    cur: list[tuple[str, str]] = []
    for raw in FIXTURE.read_text(encoding="utf-8").split("\n"):
        if raw.startswith("# session"):
            if cur:
                sessions.append(Recorded(tuple(cur)))
            cur = []
        elif raw.startswith(("A> ", "G> ")) or raw in ("A>", "G>"):
            cur.append((raw[0], raw[3:]))
    if cur:
        sessions.append(Recorded(tuple(cur)))
    return sessions


def env_block(*, script: str = "check", args: tuple[str, ...] = (), channel: str = "PJSIP/agent-00000001",
              uniqueid: str = "1795418477.5", template: Recorded | None = None) -> bytes:
    """A recorded env block with its script, channel, uniqueid and arguments replaced."""
    base = template or recorded_sessions()[0]
    out = []
    for line in base.env.decode().split("\n"):
        key = line.partition(":")[0]
        if key.startswith("agi_arg_") or line == "":
            continue
        if key == "agi_network_script":
            line = f"agi_network_script: {script}"
        elif key == "agi_request":
            line = f"agi_request: agi://127.0.0.1:4573/{script}"
        elif key == "agi_channel":
            line = f"agi_channel: {channel}"
        elif key == "agi_uniqueid":
            line = f"agi_uniqueid: {uniqueid}"
        out.append(line)
    out += [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
    return ("\n".join(out) + "\n\n").encode()


def channel_info(env: bytes) -> ChannelInfo:
    """What the product's client needs to know of the channel, read from an environment block to replay."""
    block = env.split(b"\n\n", 1)[0]
    req = parse_env(block)  # the gateway's own env parser: the block is read one way in the whole project
    e = req.env

    def known(key: str) -> str:
        value = e.get(key, "")
        return "" if value == "unknown" else value  # S_COR() writes "unknown" for what is not set

    return ChannelInfo(request=req.request, script=e.get("agi_network_script", ""), args=req.args,
                       channel=req.channel, uniqueid=req.uniqueid, callerid=known("agi_callerid"),
                       calleridname=known("agi_calleridname"), dnid=known("agi_dnid"),
                       context=e.get("agi_context", "outbound"), extension=e.get("agi_extension", ""),
                       priority=int(e.get("agi_priority", "1") or 1), language=e.get("agi_language", "en"),
                       type=e.get("agi_type", "PJSIP"), version=e.get("agi_version", "23.4.1"),
                       accountcode=e.get("agi_accountcode", ""),
                       threadid=int(e.get("agi_threadid", "0") or 0))


_ANY_CHANNEL = ChannelInfo("agi://127.0.0.1:4573/check", "check", ())


def answer(line: str, variables: dict[str, str], dead: bool) -> str:
    """What Asterisk replies to one command line, ``variables`` being the channel's (updated in place)."""
    agi = AsteriskAgi(_ANY_CHANNEL)
    agi.variables = variables
    agi.dead = dead
    return agi.receive_data(line.encode() + b"\n").decode()


@dataclass
class CallResult:
    variables: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    agistatus: str = "SUCCESS"
    closed_by_server: bool = False


async def call(host: str, port: int, env: bytes, *, variables: dict[str, str] | None = None,
               hangup_before_reply: int | None = None, read_timeout: float = 5.0) -> CallResult:
    """One FastAGI session as Asterisk plays it; ``hangup_before_reply=N`` writes HANGUP before the Nth reply.

    The replies are the product client's (:class:`gateway.replay.fastagi.AsteriskAgi`); what this adds is the
    way Asterisk 23.4.1 writes them on the socket: ``env`` as given (a recording's bytes), one line per write,
    a HANGUP injected where a test wants the channel to die, and the late HANGUP after the gateway's close.
    """
    agi = AsteriskAgi(channel_info(env), variables)
    res = CallResult()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for line in env.splitlines(keepends=True):  # ast_agi_send: one write per line
            writer.write(line)
        n = 0
        while not agi.closed:
            try:
                line = await asyncio.wait_for(reader.readline(), read_timeout)
            except ConnectionResetError:  # the server closed with our reply unread: Asterisk sees the end too
                line = b""
            if not line:
                res.closed_by_server = True
            else:
                n += 1
            reply = agi.receive_data(line)  # b"": end of stream, answered with the late HANGUP
            if line and hangup_before_reply == n and not agi.closed:
                reply = b"HANGUP\n" + reply
                agi.dead = True
            with contextlib.suppress(OSError):  # what Asterisk writes once the gateway has closed: a reset, at most
                writer.write(reply)
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # ConnectionResetError included
            await writer.wait_closed()
    res.agistatus = agi.variables.pop("AGISTATUS", "SUCCESS")
    res.variables = agi.variables
    res.commands = agi.commands
    return res
