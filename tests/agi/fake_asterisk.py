"""Asterisk's side of FastAGI, byte for byte, for tests and the benchmark.

The environment blocks come from the recordings in tests/fixtures/asterisk-23.4.1/fastagi-sessions.txt;
the replies are what res/res_agi.c writes (``200 result=1``, ``200 result=1 (value)``, ``200 result=0``,
``510 Invalid or unknown command``, an inline ``HANGUP`` once the channel is gone). As in
fastagi-gateway-sessions.txt (Asterisk 23.4.1 against this gateway), the environment block goes one line
per write, and ``HANGUP`` follows the gateway's close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

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


def parse_args(s: str) -> list[str]:
    """res_agi.c's parse_args: whitespace splits, double quotes group, a backslash escapes the next character."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in s:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                argv.append("".join(cur))
                cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if cur is None:
            cur = []
        cur.append(ch)
        escaped = False
    if cur is not None:
        argv.append("".join(cur))
    return argv


@dataclass
class CallResult:
    variables: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    agistatus: str = "SUCCESS"
    closed_by_server: bool = False


def answer(line: str, variables: dict[str, str], dead: bool) -> str:
    """What Asterisk replies to one command line (the commands the gateway uses, and a few others)."""
    argv = parse_args(line)
    words = [w.lower() for w in argv]
    if words[:2] == ["set", "variable"]:
        if len(argv) != 4:
            return ("520-Invalid command syntax.  Proper usage follows:\n"
                    "Sets a variable to the current channel.\n520 End of proper usage.\n")
        variables[argv[2]] = argv[3]
        return "200 result=1\n"
    if words[:2] == ["get", "variable"]:
        if len(argv) != 3:
            return "520 Invalid command syntax.  Proper usage not available.\n"
        v = variables.get(argv[2])
        return "200 result=0\n" if v is None else f"200 result=1 ({v})\n"
    if words[:1] == ["exec"]:  # res_agi.c allows EXEC on a dead channel too
        if words[1:2] == ["mset"]:  # pbx_builtin_setvar_multiple: name=value pairs split on commas
            for pair in (argv[2] if len(argv) > 2 else "").split(","):
                name, sep, value = pair.partition("=")
                if sep:
                    variables[name.strip()] = value
            return "200 result=0\n"
        return "200 result=-2\n"
    if words[:1] == ["verbose"]:
        return "200 result=1\n"
    if words[:1] == ["answer"]:
        return "511 Command Not Permitted on a dead channel or intercept routine\n" if dead else "200 result=0\n"
    return "510 Invalid or unknown command\n"


async def call(host: str, port: int, env: bytes, *, variables: dict[str, str] | None = None,
               hangup_before_reply: int | None = None, read_timeout: float = 5.0) -> CallResult:
    """One FastAGI session as Asterisk plays it; ``hangup_before_reply=N`` writes HANGUP before the Nth reply."""
    res = CallResult(variables=dict(variables or {}))
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for line in env.splitlines(keepends=True):  # ast_agi_send: one write per line
            writer.write(line)
        dead = False
        n = 0
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), read_timeout)
            except ConnectionResetError:  # the server closed with our reply unread: Asterisk sees the end too
                line = b""
            if not line:
                res.closed_by_server = True
                with contextlib.suppress(OSError):  # what Asterisk 23.4.1 writes once the gateway has closed
                    writer.write(b"HANGUP\n")
                break
            text = line.decode().rstrip("\n")
            if text.lower().startswith("failure"):
                res.agistatus = "FAILURE"
                break
            res.commands.append(text)
            n += 1
            reply = answer(text, res.variables, dead)
            if hangup_before_reply == n:
                reply = "HANGUP\n" + reply
                dead = True
            writer.write(reply.encode())
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # ConnectionResetError included
            await writer.wait_closed()
    return res
