"""A FastAGI client that plays Asterisk's side of a session, as ``res/res_agi.c`` does.

Asterisk connects, writes ``agi_network: yes`` and ``agi_network_script``, then the
environment block of ``setup_env()`` in its exact order, then a blank line; then it
reads one command a line and answers each one (``200 result=1`` for SET VARIABLE,
``510`` for an unknown command, a multi-line ``520`` for bad syntax, ``511`` on a
dead channel) until the server closes the socket; last it writes ``HANGUP``
(AGISIGHUP is on by default). Commands are split with the same quoting and
escaping rules as ``parse_args()``: a gateway that replies with CRLF or a stray
quote gets exactly the variable value a real dialplan would see, so the harness
catches what Asterisk would choke on.

:class:`AsteriskAgi` is the sans-I/O core; :func:`run_session` its asyncio adapter. It is the one
FastAGI client of the project: the tests' fake Asterisk (tests/agi/fake_asterisk.py) drives it too.

Argument limits, from res/res_agi.c (Asterisk master, f0c1c1a7b79b, 2026-08-06), ``#define MAX_ARGS 128``:

- a command line: ``agi_handle_command`` gives ``parse_args`` an ``argv[MAX_ARGS]``, and ``parse_args``
  stops starting words at ``x >= MAX_ARGS - 1`` ("Too many arguments, truncating"): 127 words at most,
  the rest of the line dropped (a quote right after white space still starts a word: that path has no check);
- ``AGI(script,arg1,…)``: ``agi_exec_full`` splits its data with ``AST_STANDARD_APP_ARGS`` into
  ``AST_APP_ARG(arg)[MAX_ARGS]``, and main/app.c ``__ast_app_separate_args`` fills at most ``arraylen - 1``
  pieces then puts the unsplit rest in the last one; ``setup_env`` writes ``agi_arg_%d`` for ``count = 1;
  count < argc``: the script is ``arg[0]``, so 127 ``agi_arg_N`` lines at most, the 127th holding the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.faults import FastAgiError, FaultKind

__all__ = [
    "AGI_BUF_LEN",
    "DEAD_CHANNEL",
    "MAX_ARGS",
    "AgiProtocolError",
    "AsteriskAgi",
    "ChannelInfo",
    "Session",
    "agi_args",
    "env_block",
    "parse_args",
    "run_session",
]

AGI_BUF_LEN = 2048  # res_agi.c reads commands with fgets() into a buffer this size
MAX_ARGS = 128  # res_agi.c's argv arrays: 127 words of a command, 127 agi_arg_N (see the module docstring)
DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercept routine\n"  # agi_handle_command()

# Usage texts Asterisk 23 prints inside a 520 reply (from its XML docs), for the commands simulated.
_USAGE = {
    "set variable": "Sets a variable to the current channel.\n",
    "get variable": "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. "
                    "Returns <literal>1</literal> if <replaceable>variablename</replaceable> is set and "
                    "returns the variable in parentheses.\n",
    "verbose": "Sends <replaceable>message</replaceable> to the console via verbose message system. "
               "<replaceable>level</replaceable> is the verbose level (1-4). Always returns <literal>1</literal>\n",
}
# Commands a FastAGI server may send on a dead (hung up) channel: the ``dead`` flag of res_agi.c.
_DEAD_OK = {"asyncagi break", "database del", "database deltree", "database get", "database put", "exec",
            "get full variable", "get variable", "noop", "set variable", "verbose", "speech destroy",
            "speech unload grammar"}
# Every command res_agi registers, longest first so that "get full variable" wins over "get".
_COMMANDS = sorted([
    "answer", "asyncagi break", "channel status", "database del", "database deltree", "database get",
    "database put", "exec", "get data", "get full variable", "get option", "get variable", "gosub", "hangup",
    "noop", "receive char", "receive text", "record file", "say alpha", "say digits", "say number",
    "say phonetic", "say date", "say time", "say datetime", "send image", "send text", "set autohangup",
    "set callerid", "set context", "set extension", "set music", "set priority", "set variable", "stream file",
    "control stream file", "tdd mode", "verbose", "wait for digit", "speech create", "speech set",
    "speech destroy", "speech load grammar", "speech unload grammar", "speech activate grammar",
    "speech deactivate grammar", "speech recognize",
], key=lambda c: -len(c.split()))
_COMMAND_WORDS = [(c, c.split()) for c in _COMMANDS]  # split once: the fake Asterisk of the tests runs it a lot
_VAR = re.compile(r"\$\{([^{}]*)\}")


class AgiProtocolError(FastAgiError):
    """The FastAGI server did something Asterisk would fail on (``kind``: unreachable, timeout, reset)."""


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What Asterisk knows about the channel running ``AGI(agi://host:port/script,args...)``."""

    request: str  # agi://host:port/check
    script: str  # check
    args: tuple[str, ...]
    channel: str = "PJSIP/replay-00000001"
    uniqueid: str = "0.1"
    callerid: str = ""  # "" -> "unknown", as S_COR() does
    calleridname: str = ""
    dnid: str = ""
    context: str = "outbound"
    extension: str = ""
    priority: int = 1
    language: str = "en"
    type: str = "PJSIP"
    version: str = "23.4.1"
    accountcode: str = ""
    threadid: int = 140618572904128


def env_block(info: ChannelInfo) -> bytes:
    """launch_netscript() then setup_env(): the bytes Asterisk sends before the first command."""
    lines = ["agi_network: yes"]
    if info.script:
        lines.append(f"agi_network_script: {info.script}")
    lines += [
        f"agi_request: {info.request}",
        f"agi_channel: {info.channel}",
        f"agi_language: {info.language}",
        f"agi_type: {info.type}",
        f"agi_uniqueid: {info.uniqueid}",
        f"agi_version: {info.version}",
        f"agi_callerid: {info.callerid or 'unknown'}",
        f"agi_calleridname: {info.calleridname or 'unknown'}",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        f"agi_dnid: {info.dnid or 'unknown'}",
        "agi_rdnis: unknown",
        f"agi_context: {info.context}",
        f"agi_extension: {info.extension}",
        f"agi_priority: {info.priority}",
        "agi_enhanced: 0.0",
        f"agi_accountcode: {info.accountcode}",
        f"agi_threadid: {info.threadid}",
    ]
    lines += [f"agi_arg_{i}: {a}" for i, a in enumerate(agi_args(info.args), start=1)]
    return ("\n".join(lines) + "\n\n").encode()


def agi_args(args: tuple[str, ...]) -> tuple[str, ...]:
    """The ``agi_arg_N`` values Asterisk writes for AGI()'s arguments: 127 at most, the last one the rest.

    ``__ast_app_separate_args`` leaves the rest unsplit, commas included (see the module docstring).
    """
    last = MAX_ARGS - 1
    return args if len(args) <= last else (*args[:last - 1], ",".join(args[last - 1:]))


def parse_args(line: str) -> list[str]:
    """res_agi.c parse_args(): whitespace splits, double quotes group, backslash escapes one char.

    Quotes start a word only when they follow whitespace; an empty quoted string is a word.
    """
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                argv.append("")
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                argv[-1] = "".join(cur)
            cur = None
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            if len(argv) >= MAX_ARGS - 1:
                continue
            cur = []
            argv.append("")
            whitespace = False
        if cur is not None:
            cur.append(ch)
        escaped = False
    if cur is not None:
        argv[-1] = "".join(cur)
    return argv


def _find(argv: list[str]) -> str | None:
    """find_command(argv, 0): the registered command whose words start argv (case-insensitive)."""
    words = [a.lower() for a in argv[:3]]  # no command has more than three words
    for cmd, parts in _COMMAND_WORDS:
        if words[:len(parts)] == parts:
            return cmd
    return None


class AsteriskAgi:
    """Asterisk's side of one FastAGI session, without I/O.

    ``start()`` gives the env block; ``receive_data(data)`` takes what the server
    sent and returns the reply bytes; ``receive_data(b"")`` is end of stream and
    returns the final ``HANGUP``; a ``failure`` line ends the session at once
    (``closed``; AGISTATUS=FAILURE). ``variables`` is the channel as the dialplan sees
    it after the session; ``errors`` lists what a real dialplan would have suffered.
    """

    def __init__(self, info: ChannelInfo, variables: Mapping[str, str] | None = None) -> None:
        self.info = info
        self.variables: dict[str, str] = dict(variables or {})
        self.commands: list[str] = []
        self.errors: list[str] = []
        self.dead = False  # hung up: only "dead" commands allowed, answered 511 otherwise
        self.closed = False
        self._buf = bytearray()

    def start(self) -> bytes:
        return env_block(self.info)

    def _end(self, status: str) -> None:
        """The AGI application returns: AGISTATUS is what the dialplan tests next."""
        self.closed = True
        self.variables["AGISTATUS"] = status

    def receive_data(self, data: bytes) -> bytes:
        if self.closed:
            return b""
        if not data:
            if self._buf.strip():
                self.errors.append(f"server closed with an unterminated command {bytes(self._buf[:60])!r}")
            self._end("HANGUP" if self.dead else "SUCCESS")
            return b"HANGUP\n"
        self._buf += data
        out = bytearray()
        while True:
            nl = self._buf.find(b"\n", 0, AGI_BUF_LEN - 1)
            if nl < 0:
                if len(self._buf) >= AGI_BUF_LEN - 1:
                    # run_agi() stops reading when its buffer is full and runs that much as a command.
                    self.errors.append(f"command line longer than {AGI_BUF_LEN - 1} bytes")
                    line = bytes(self._buf[:AGI_BUF_LEN - 1])
                    del self._buf[:AGI_BUF_LEN - 1]
                    out += self._command(line)
                    continue
                return bytes(out)
            line = bytes(self._buf[:nl])
            del self._buf[:nl + 1]
            if line[:7].lower() == b"failure":
                # run_agi(): the script failed; stop reading, AGISTATUS=FAILURE, HANGUP, close.
                self.errors.append("gateway answered FAILURE")
                self._end("FAILURE")
                return bytes(out) + b"HANGUP\n"
            out += self._command(line)

    def _command(self, raw: bytes) -> bytes:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.errors.append(f"command is not UTF-8: {raw[:60]!r}")
            line = raw.decode("utf-8", "replace")
        self.commands.append(line)
        argv = parse_args(line)
        cmd = _find(argv) if argv else None
        if cmd is None:
            self.errors.append(f"invalid or unknown command {line[:60]!r} (510)")
            return b"510 Invalid or unknown command\n"
        if self.dead and cmd not in _DEAD_OK:
            self.errors.append(f"{cmd.upper()} on a dead channel (511)")
            return DEAD_CHANNEL.encode()
        reply = self._handle(cmd, argv)
        if reply is None:
            self.errors.append(f"bad syntax: {line[:60]!r} (520)")
            usage = _USAGE.get(cmd)
            if usage is None:
                return b"520 Invalid command syntax.  Proper usage not available.\n"
            return f"520-Invalid command syntax.  Proper usage follows:\n{usage}520 End of proper usage.\n".encode()
        return reply.encode()

    def _substitute(self, expr: str) -> str:
        return _VAR.sub(lambda m: self._read(m.group(1)) or "", expr)

    def _read(self, name: str) -> str | None:
        builtin = {"CHANNEL": self.info.channel, "UNIQUEID": self.info.uniqueid, "EXTEN": self.info.extension,
                   "CONTEXT": self.info.context, "CALLERID(num)": self.info.callerid,
                   "CALLERID(name)": self.info.calleridname}
        if name in self.variables:
            return self.variables[name]
        return builtin.get(name)

    def _handle(self, cmd: str, argv: list[str]) -> str | None:
        """The reply line(s), or None for a 520 usage reply."""
        argc = len(argv)
        if cmd == "set variable":
            if argc != 4:
                return None
            self.variables[argv[2]] = argv[3]
            return "200 result=1\n"
        if cmd == "get variable":
            if argc != 3:
                return None
            value = self._read(argv[2])
            return "200 result=0\n" if value is None else f"200 result=1 ({value})\n"
        if cmd == "get full variable":
            if argc not in (4, 5):
                return None
            return f"200 result=1 ({self._substitute(argv[3])})\n"
        if cmd == "verbose":
            return None if argc < 2 else "200 result=1\n"
        if cmd in ("noop", "answer", "set music", "set autohangup"):
            return "200 result=0\n"
        if cmd == "hangup":
            if argc > 2:
                return None
            # Asterisk soft-hangs-up the channel, answers, then on its next read notices the
            # hangup and (AGISIGHUP) writes HANGUP before going on in dead mode.
            self.dead = True
            return "200 result=1\nHANGUP\n"
        if cmd == "exec":
            if argc < 2:
                return None
            app = argv[1].lower()
            if app == "mset":  # pbx_builtin_setvar_multiple: name=value pairs split on commas
                for pair in (argv[2] if argc >= 3 else "").split(","):
                    name, sep, value = pair.partition("=")
                    if sep:
                        self.variables[name.strip()] = value
                return "200 result=0\n"
            if app == "set" and argc >= 3 and "=" in argv[2]:
                name, _, value = argv[2].partition("=")
                self.variables[name] = value
                return "200 result=0\n"
            return "200 result=0\n" if app in ("noop", "verbose", "log", "set") else "200 result=-2\n"
        if cmd == "channel status":
            return None if argc > 3 else "200 result=4\n"  # AST_STATE_RING: in the dialplan, not answered
        if cmd in ("set callerid", "set context", "set extension", "set priority"):
            return "200 result=1\n" if cmd == "set callerid" else "200 result=0\n"
        if cmd == "gosub":
            return "200 result=-1 Gosub label not found\n"
        # Media and the rest: no media on a replayed channel, the call never got answered.
        return "200 result=-1\n"


@dataclass(frozen=True, slots=True)
class Session:
    """The outcome of one FastAGI session, as the dialplan would see it afterwards."""

    variables: Mapping[str, str]
    commands: tuple[str, ...]
    errors: tuple[str, ...]
    seconds: float  # connect to close
    verdict_seconds: float | None = None  # connect to the first DNC_VERDICT


async def run_session(host: str, port: int, info: ChannelInfo, *, session_timeout: float = 5.0,
                      connect_timeout: float = 2.0, variables: Mapping[str, str] | None = None) -> Session:
    """Connect, play the session to the end, return what the channel holds.

    ``connect_timeout`` is MAX_AGI_CONNECT (2 s) in res_agi.c. Asterisk itself waits for
    commands as long as the call lives; here ``session_timeout`` bounds the whole session so a
    stuck gateway is reported instead of hanging the replay.
    """
    agi = AsteriskAgi(info, variables)
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), connect_timeout)
    except TimeoutError:
        raise AgiProtocolError(FaultKind.UNREACHABLE,
                               f"connect to {host}:{port} timed out after {connect_timeout:g}s") from None
    except OSError as e:
        raise AgiProtocolError(FaultKind.UNREACHABLE, f"cannot connect to {host}:{port}: {e.strerror or e}") from None
    verdict_at: float | None = None
    deadline = started + session_timeout
    try:
        writer.write(agi.start())
        await writer.drain()
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise AgiProtocolError(FaultKind.TIMEOUT,
                                       f"session not closed by the gateway within {session_timeout:g}s "
                                       f"(commands so far: {len(agi.commands)})")
            try:
                data = await asyncio.wait_for(reader.read(65536), left)
            except TimeoutError:
                continue
            reply = agi.receive_data(data)
            if verdict_at is None and "DNC_VERDICT" in agi.variables:
                verdict_at = time.perf_counter() - started
            if reply:
                with contextlib.suppress(ConnectionError):
                    writer.write(reply)
                    if not agi.closed:
                        await writer.drain()
            if agi.closed:
                break
    except ConnectionError as e:
        raise AgiProtocolError(FaultKind.RESET, f"connection to {host}:{port} lost mid-session: {e}") from None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return Session(dict(agi.variables), tuple(agi.commands), tuple(agi.errors), time.perf_counter() - started,
                   verdict_at)
