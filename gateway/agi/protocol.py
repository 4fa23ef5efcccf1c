"""FastAGI, sans-I/O: bytes from Asterisk in, events out; commands in, bytes to send out.

Modelled on h11: :class:`AgiConnection` owns no socket and no clock, so every
corner of the protocol is unit-tested without I/O. It follows what
``res/res_agi.c`` really writes (checked against Asterisk 23.4.1 recordings):

- ``launch_netscript`` writes ``agi_network: yes`` and ``agi_network_script:
  <everything after the first "/" of the URL>`` (so a query string such as
  ``check?campaign=x`` is part of it), then ``setup_env`` writes
  ``agi_request`` … ``agi_threadid``, one ``agi_arg_N: value`` per AGI()
  argument, and an empty line. Every line ends with a bare ``\\n``.
- Each command gets one reply line ``CODE result=VALUE [(data)] [key=value…]
  [text]`` — except ``520-…`` which is a multi-line usage text ending with
  ``520 End of proper usage.``, and ``100 result=0 Trying...`` which is
  followed by the real reply.
- When the channel hangs up, Asterisk writes ``HANGUP`` once, inline, at the
  next turn of its loop: usually *before* the reply to the command in flight.
  It is an event of its own, never a reply, so it cannot shift later replies.
  The channel is dead from then on (commands that need it get ``511``).

Asterisk reads commands with ``fgets`` on a stdio ``FILE`` and then ``poll``s
the socket: a second command sent before the first reply may sit in stdio's
buffer unseen until the channel wakes up. So one command is in flight at a
time, and :meth:`AgiConnection.send` enforces it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from gateway.faults import FastAgiError, FaultKind

__all__ = [
    "NEED_DATA",
    "AgiConnection",
    "AgiRequest",
    "Closed",
    "Command",
    "Event",
    "ExecMSet",
    "GetVariable",
    "Hangup",
    "NeedData",
    "ProtocolError",
    "Reply",
    "SetVariable",
    "Sets",
    "State",
    "encode_command",
    "get_variable",
    "parse_env",
    "parse_reply",
    "quote",
    "set_variable",
]

DEFAULT_HEADER_LIMIT: Final = 16384
# Asterisk reads a command line into a 2048-byte buffer (AGI_BUF_LEN): a longer one is cut in two commands.
MAX_COMMAND: Final = 2047
# A reply is one short line, or a usage text of a few hundred bytes; anything far larger is not Asterisk.
DEFAULT_REPLY_LIMIT: Final = 65536

_EMPTY: Mapping[str, str] = MappingProxyType({})


class ProtocolError(FastAgiError):
    """The peer did not speak FastAGI as Asterisk does (``kind``: protocol, header_too_large, eof); the message
    says what was wrong and where."""


class State(enum.Enum):
    ENV = "env"  # reading the environment block
    IDLE = "idle"  # env received, no command in flight
    AWAITING = "awaiting"  # a command was sent, its reply has not come yet
    CLOSED = "closed"  # end of stream seen (or a fatal protocol error)


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """The environment block, read whole. ``script`` is the route, without its query string."""

    env: Mapping[str, str]
    script: str
    query: Mapping[str, str]
    args: tuple[str, ...]

    @property
    def network(self) -> bool:
        return self.env.get("agi_network") == "yes"

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def request(self) -> str:
        return self.env.get("agi_request", "")

    def arg(self, n: int) -> str:
        """The ``agi_arg_N`` value (1-based), "" when absent."""
        return self.args[n - 1] if 0 < n <= len(self.args) else ""


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply. ``result`` is the raw text after ``result=``; ``data`` what was in parentheses."""

    code: int
    result: str | None = None
    data: str | None = None
    fields: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # endpos=…, digit=…
    text: str = ""  # the free text: "Invalid or unknown command", "Gosub label not found"
    usage: tuple[str, ...] = ()  # the lines between 520- and "520 End of proper usage."

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result) if self.result is not None else None
        except ValueError:
            return None

    @property
    def endpos(self) -> int | None:
        v = self.fields.get("endpos")
        return int(v) if v is not None and v.lstrip("-").isdigit() and v.isascii() else None


@dataclass(frozen=True, slots=True)
class Hangup:
    """Asterisk's inline ``HANGUP`` line: the channel is gone; the session continues in dead mode."""


@dataclass(frozen=True, slots=True)
class Closed:
    """End of stream from Asterisk."""


class NeedData(enum.Enum):
    NEED_DATA = "need_data"


NEED_DATA: Final = NeedData.NEED_DATA

Event = AgiRequest | Reply | Hangup | Closed

_REPLY = re.compile(r"(\d{3})(?: result=(\S*))?(?: ?(.*))?", re.S)
_DATA_THEN_FIELDS = re.compile(r"\((.*)\)((?:\s+[A-Za-z_]+=\S*)*)(?:\s+(.*))?", re.S)
_FIELD = re.compile(r"([A-Za-z_]+)=(\S*)")
_UNSAFE = ("\n", "\r", "\0")
_UNSAFE_RE = re.compile("[\n\r\0]")
# The replies to nearly every command the gateway sends (SET VARIABLE, EXEC MSet), parsed once.
_COMMON: Final = {b"200 result=1\n": Reply(200, "1"), b"200 result=0\n": Reply(200, "0")}


def _decode(raw: bytes) -> str:
    # Caller names from trunks are sometimes Latin-1: tolerate them rather than drop the call.
    return raw.decode("utf-8", "replace")


_ARG_KEYS: Final = tuple(f"agi_arg_{i}" for i in range(1, 129))  # res_agi.c passes at most 127 arguments


def parse_env(block: bytes) -> AgiRequest:
    """Parse a complete environment block (without its terminating empty line).

    This runs for every call, so the usual block (every line ``agi_name: value``, arguments 1..N
    in a row, as ``setup_env`` writes them) takes a path with no Python loop over the lines;
    anything else goes line by line, which also says which line is wrong.
    """
    text = _decode(block)  # once for the whole block
    lines = text.split("\n")
    if "\r" in text:
        lines = [line.removesuffix("\r") for line in lines]
    try:
        env: dict[str, str] = dict([line.split(": ", 1) for line in lines])
    except ValueError:  # a line without ": "
        env = _parse_env_lines(lines)
    else:
        keys = "".join(env)
        if " " in keys or "" in env:
            env = _parse_env_lines(lines)
    n = 0
    while n < 128 and _ARG_KEYS[n] in env:
        n += 1
    if text.count("agi_arg_") == n:
        argv = tuple([env[k] for k in _ARG_KEYS[:n]])
    else:  # gaps, or "agi_arg_" inside a value: the exact reading
        args = {int(k[8:]): v for k, v in env.items() if k.startswith("agi_arg_") and k[8:].isdigit()
                and k[8:].isascii()}
        argv = tuple(args.get(i, "") for i in range(1, max(args, default=0) + 1))
    raw = env.get("agi_network_script")
    if raw is None:
        # Asterisk always sends agi_network_script (launch_netscript); a client that sends only agi_request
        # (hand-written, another PBX) is routed by the path of that URL, as Asterisk would have cut it.
        url = urlsplit(env.get("agi_request", ""))
        raw = url.path.lstrip("/") + ("?" + url.query if url.query else "")
    script, _, qs = raw.partition("?")
    query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
    return AgiRequest(MappingProxyType(env), script.strip("/"), MappingProxyType(query) if query else _EMPTY, argv)


def _parse_env_lines(lines: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        key, sep, value = line.partition(": ")
        if not sep:  # "agi_accountcode:" with its trailing space lost on the way
            key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            raise ProtocolError(FaultKind.PROTOCOL, f"environment line {n} is not 'agi_name: value': {line[:80]!r}")
        env[key] = value
    return env


def parse_reply(line: str, usage: tuple[str, ...] = ()) -> Reply:
    """Parse one reply line (without its newline)."""
    m = _REPLY.fullmatch(line)
    if m is None:
        raise ProtocolError(FaultKind.PROTOCOL, f"reply is not 'CODE result=…': {line[:80]!r}")
    code, result, rest = int(m.group(1)), m.group(2), (m.group(3) or "").strip()
    data: str | None = None
    fields: dict[str, str] = {}
    text = rest
    if rest.startswith("("):
        dm = _DATA_THEN_FIELDS.fullmatch(rest)
        if dm is not None:
            data, text = dm.group(1), (dm.group(3) or "")
            fields = dict(_FIELD.findall(dm.group(2)))
    elif result is not None and rest:
        # "200 result=0 endpos=1234": key=value pairs, then maybe free text ("Gosub label not found").
        words = rest.split(" ")
        i = 0
        while i < len(words) and _FIELD.fullmatch(words[i]):
            k, v = words[i].split("=", 1)
            fields[k] = v
            i += 1
        text = " ".join(words[i:])
    return Reply(code, result, data, MappingProxyType(fields) if fields else _EMPTY, text, usage)


def quote(value: str) -> str:
    """Quote one argument the way res_agi.c's ``parse_args`` reads it back.

    Inside double quotes a backslash escapes the next character, so ``"`` and
    ``\\`` are escaped; line breaks cannot be sent at all (they end the command)
    and are replaced by spaces.
    """
    if _UNSAFE_RE.search(value):
        value = _UNSAFE_RE.sub(" ", value)
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def encode_command(command: str) -> bytes:
    """The bytes of one command line, refused if Asterisk would not read it back as one command."""
    if _UNSAFE_RE.search(command):
        raise ValueError("a command cannot contain a line break or NUL")
    data = command.encode("utf-8") + b"\n"
    if len(data) > MAX_COMMAND + 1:
        raise ValueError(f"command of {len(data)} bytes: Asterisk would cut it at {MAX_COMMAND}")
    return data


class GetVariable(NamedTuple):
    """``GET VARIABLE name``: a channel variable or a dialplan function such as ``CALLERID(num)``."""

    name: str

    def line(self) -> str:
        _check_name(self.name)
        return f"GET VARIABLE {self.name}"

    def encode(self) -> bytes:
        return encode_command(self.line())


class SetVariable(NamedTuple):
    """``SET VARIABLE name "value"``, the value quoted as ``parse_args`` reads it back."""

    name: str
    value: str

    def line(self) -> str:
        _check_name(self.name)
        return f"SET VARIABLE {self.name} {quote(self.value)}"

    def encode(self) -> bytes:
        return encode_command(self.line())


_MSET_UNSAFE = re.compile(r'[,="\\\s\0]')
_MSET_NAMES: set[str] = set()  # names already checked: in practice the four DNC_* variables


class ExecMSet(NamedTuple):
    """``EXEC MSet "name=value,…"``: every pair in one command (one round trip instead of one per variable).

    Build it with :meth:`of`, which refuses the pairs MSet cannot carry.
    """

    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, pairs: Sequence[tuple[str, str]]) -> ExecMSet | None:
        """The command for ``pairs``; None when a value cannot travel that way.

        MSet (main/pbx_variables.c) splits its argument on commas, then each pair on its first ``=``:
        a value holding a comma, a quote, a backslash, white space or NUL must go by ``SET VARIABLE`` instead.
        Built once per call, so the checks are one scan of the values and a set look-up per name.
        """
        for name, _ in pairs:
            if name not in _MSET_NAMES:
                _check_name(name)
                if "," in name or "=" in name:
                    return None
                if len(_MSET_NAMES) < 64:
                    _MSET_NAMES.add(name)
        if _MSET_UNSAFE.search("".join([value for _, value in pairs])):
            return None
        return cls(pairs if isinstance(pairs, tuple) else tuple(pairs))

    def line(self) -> str:
        # Nothing left that quote() would escape: of() let no quote, backslash, line break or NUL through.
        return 'EXEC MSet "' + ",".join([f"{name}={value}" for name, value in self.pairs]) + '"'

    def encode(self) -> bytes:
        return encode_command(self.line())


Command = GetVariable | SetVariable | ExecMSet  # what the gateway sends; each encodes to one command line
Sets = tuple[tuple[str, str], ...]  # channel variables to set, (variable, value), in this order: a route's answer


def set_variable(name: str, value: str) -> str:
    return SetVariable(name, value).line()


def mset(pairs: Sequence[tuple[str, str]]) -> str | None:
    """The line of :meth:`ExecMSet.of`, or None when the pairs cannot travel in one MSet."""
    command = ExecMSet.of(pairs)
    return command.line() if command is not None else None


def get_variable(name: str) -> str:
    """``GET VARIABLE`` for a variable or a dialplan function such as ``CALLERID(num)``."""
    return GetVariable(name).line()


_BAD_NAME = re.compile(r'[\s"\\\0]')


def _check_name(name: str) -> None:
    if not name or _BAD_NAME.search(name):
        raise ValueError(f"not a variable name: {name!r}")


# Enum members read through their class cost about 50 ns each (CPython 3.11): the per-call path reads these.
_AWAITING = State.AWAITING
_CLOSED = State.CLOSED
_ENV = State.ENV
_IDLE = State.IDLE


class AgiConnection:
    """The server side of one FastAGI session."""

    def __init__(self, header_limit: int = DEFAULT_HEADER_LIMIT, reply_limit: int = DEFAULT_REPLY_LIMIT) -> None:
        self.header_limit = header_limit
        self.reply_limit = reply_limit
        self.state = _ENV
        self.dead = False  # HANGUP seen (or a 511): the channel is gone
        self.request: AgiRequest | None = None
        self._buf = bytearray()
        self._eof = False
        self._scan = 0  # where to resume looking for the end of the env block
        self._usage: list[str] | None = None  # inside a 520- multi-line reply
        self._usage_bytes = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def has_input(self) -> bool:
        """Whether :meth:`next_event` may have something new: bytes buffered, or the end of stream."""
        return bool(self._buf) or self._eof

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the socket; ``b""`` means end of stream."""
        if self._eof:
            if data:
                raise ProtocolError(FaultKind.PROTOCOL, "data received after end of stream")
            return
        if data:
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> Event | NeedData:
        """The next complete event, or NEED_DATA. Raises ProtocolError on input Asterisk would never send."""
        if self.state is _CLOSED:
            return Closed()
        if self.state is _ENV:
            return self._next_env()
        return self._next_line_event()

    def send(self, command: str) -> bytes:
        """Bytes for one command; only one may be in flight (see the module docstring)."""
        return self.send_encoded(encode_command(command))

    def send_encoded(self, data: bytes) -> bytes:
        """:meth:`send` for a command already checked and encoded by :func:`encode_command`."""
        if self.state is not _IDLE:
            if self.state is _ENV:
                raise RuntimeError("cannot send a command before the environment block is read")
            if self.state is _AWAITING:
                raise RuntimeError("a command is already waiting for its reply")
            raise RuntimeError("connection closed")
        self.state = _AWAITING
        return data

    def receive_common(self, data: bytes) -> Reply | None:
        """Take ``data`` if it is exactly one of the usual replies to the command in flight, and return it.

        ``200 result=1`` (SET VARIABLE) and ``200 result=0`` (EXEC of an application that returned 0,
        such as MSet) cover nearly every reply the gateway gets: equivalent to :meth:`receive_data` then
        :meth:`next_event`, without the event machinery. None (nothing taken) for anything else, which
        then goes the usual way.
        """
        reply = _COMMON.get(data)
        if reply is not None and self.state is _AWAITING and not self._buf and self._usage is None:
            self.state = _IDLE
            return reply
        return None

    def _fail(self, message: str, kind: FaultKind = FaultKind.PROTOCOL) -> ProtocolError:
        self.state = _CLOSED
        return ProtocolError(kind, message)

    def _next_env(self) -> AgiRequest | NeedData:
        buf = self._buf
        if buf[:1] == b"\n" or buf[:2] == b"\r\n":
            raise self._fail("empty environment block")
        # Resume the search where the previous one stopped: a slow client must not cost O(n²).
        start = max(0, self._scan - 3)
        end = buf.find(b"\n\n", start)
        if end >= 0:
            return self._take_env(end, 2)
        end = buf.find(b"\r\n\r\n", start)  # tolerate CRLF line ends (a proxy or a test client may add them)
        if end >= 0:
            return self._take_env(end, 4)
        if len(buf) > self.header_limit:
            raise self._fail(f"environment block larger than {self.header_limit} bytes without its end",
                             FaultKind.HEADER_TOO_LARGE)
        if self._eof:
            raise self._fail(f"connection closed before the end of the environment block ({len(buf)} bytes)",
                             FaultKind.EOF)
        self._scan = len(buf)
        return NEED_DATA

    def _take_env(self, end: int, sep: int) -> AgiRequest:
        if end > self.header_limit:
            raise self._fail(f"environment block of {end} bytes is larger than {self.header_limit}",
                             FaultKind.HEADER_TOO_LARGE)
        block = bytes(self._buf[:end])
        del self._buf[: end + sep]
        try:
            req = parse_env(block)
        except ProtocolError as e:
            self.state = _CLOSED
            raise e
        self.request = req
        self.state = _IDLE
        return req

    def _next_line_event(self) -> Event | NeedData:
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self.reply_limit:
                    raise self._fail(f"reply line longer than {self.reply_limit} bytes")
                if self._eof:
                    if self._buf:
                        raise self._fail(f"connection closed in the middle of a reply line ({len(self._buf)} bytes)",
                                         FaultKind.EOF)
                    if self._usage is not None:
                        raise self._fail("connection closed in the middle of a 520 usage reply", FaultKind.EOF)
                    self.state = _CLOSED
                    return Closed()
                return NEED_DATA
            line = _decode(bytes(self._buf[:nl]).removesuffix(b"\r"))
            del self._buf[: nl + 1]
            if self._usage is not None:
                if line.startswith("520 "):
                    usage = tuple(self._usage)
                    self._usage = None
                    return self._reply(parse_reply(line, usage))
                self._usage_bytes += len(line)
                if self._usage_bytes > self.reply_limit:
                    raise self._fail(f"520 usage text longer than {self.reply_limit} bytes")
                self._usage.append(line)
                continue
            if line == "HANGUP":
                self.dead = True
                return Hangup()
            if self.state is not _AWAITING:
                raise self._fail(f"reply with no command in flight: {line[:80]!r}")
            if line.startswith("520-"):
                self._usage, self._usage_bytes = [], 0
                continue
            reply = parse_reply(line) if line[:3].isdigit() else None
            if reply is None:
                raise self._fail(f"reply is not 'CODE result=…': {line[:80]!r}")
            if reply.code == 100:
                continue  # "100 result=0 Trying...": the real reply follows
            return self._reply(reply)

    def _reply(self, reply: Reply) -> Reply:
        self.state = _IDLE
        if reply.code == 511:
            self.dead = True
        return reply
