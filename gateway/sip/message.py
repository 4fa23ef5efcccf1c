"""SIP messages, sans-I/O: bytes of one request in, a :class:`SipRequest` out; a request and a status in, the
response's bytes out (RFC 3261 §7, §8.2.6, §20).

Only what a redirect server needs is parsed: the start line, every header line (compact forms expanded,
folded lines joined), the top ``Via`` (branch, sent-by, ``rport``), the tags of ``From`` and ``To``,
``CSeq`` and ``Content-Length``. Everything else is kept as text and never interpreted.

A message that is not SIP, or too large, or misses what a response needs (``Via``, ``From``, ``To``,
``Call-ID``, ``CSeq``) raises :class:`Drop`: nothing can be answered to it. A request that can be answered but
is wrong (a ``CSeq`` whose method is not the request's, a body shorter than its ``Content-Length``) raises
:class:`BadRequest` carrying the parsed request, and is answered 400 with the fault as reason phrase.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

__all__ = [
    "BRANCH_COOKIE",
    "MAX_MESSAGE",
    "BadRequest",
    "Drop",
    "DropKind",
    "SipRequest",
    "Via",
    "build_response",
    "parse_request",
    "uri_user",
    "with_user",
]

BRANCH_COOKIE: Final = "z9hG4bK"  # RFC 3261 §8.1.1.7: a branch starting with it identifies the transaction
MAX_MESSAGE: Final = 65535  # bytes: the largest UDP datagram; a stream message over it is refused too
MAX_HEADERS: Final = 128  # header lines (a real INVITE has 10 to 30)
SERVER: Final = "dnc-gateway"

# RFC 3261 §7.3.3 and the IANA registry: the compact forms a proxy may send.
COMPACT: Final[Mapping[str, str]] = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "n": "identity-info", "o": "event", "r": "refer-to", "s": "subject",
    "t": "to", "u": "allow-events", "v": "via", "x": "session-expires", "y": "identity",
}

REASONS: Final[Mapping[int, str]] = {
    100: "Trying", 200: "OK", 302: "Moved Temporarily", 400: "Bad Request", 405: "Method Not Allowed",
    416: "Unsupported URI Scheme", 481: "Call/Transaction Does Not Exist", 483: "Too Many Hops",
    487: "Request Terminated", 500: "Server Internal Error", 503: "Service Unavailable", 603: "Decline",
}

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_START = re.compile(r"([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP/2\.0")
_VIA = re.compile(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z]+)\s+([^;\s]+)\s*(.*)", re.DOTALL)
_CSEQ = re.compile(r"(\d{1,10})\s+([A-Za-z0-9.!%*_+`'~-]+)")
_DIGITS = re.compile(r"\d{1,10}")
# RFC 3261 §25.1 user-unreserved and unreserved marks: what a user part may hold unescaped.
_USER_SAFE = "-_.!~*'()&=+$,;?/"


class DropKind(enum.StrEnum):
    """Why a message got no answer (a metric label: bounded)."""

    TOO_LARGE = "too_large"
    NOT_SIP = "not_sip"
    RESPONSE = "response"  # a response sent to a server that sends no request: nothing to do
    INCOMPLETE = "incomplete"  # misses a header a response needs
    BAD_ACK = "bad_ack"  # an ACK is never answered, even a malformed one


class Drop(Exception):
    """A message nothing can be answered to."""

    def __init__(self, kind: DropKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class BadRequest(Exception):
    """A request wrong in a way that deserves a 400 (it carries enough to build the response)."""

    def __init__(self, request: SipRequest, message: str) -> None:
        super().__init__(message)
        self.request = request


@dataclass(frozen=True, slots=True)
class Via:
    """One ``Via`` value: ``SIP/2.0/UDP host:port;branch=z9hG4bK…;rport``."""

    transport: str
    sent_by: str
    params: Mapping[str, str | None]
    raw: str

    @property
    def branch(self) -> str:
        return self.params.get("branch") or ""


@dataclass(frozen=True, slots=True)
class SipRequest:
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]  # (lowercase full name, value) in the order received, one per value line
    vias: tuple[str, ...]  # every Via value, in order (a line with commas split into its values)
    via: Via  # the top one
    from_: str
    to: str
    call_id: str
    cseq: int
    cseq_method: str
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of a header (lowercase full name), None when absent."""
        for n, v in self.headers:
            if n == name:
                return v
        return None

    @property
    def to_tag(self) -> str:
        return _param(self.to, "tag")

    @property
    def from_tag(self) -> str:
        return _param(self.from_, "tag")


def _split_commas(value: str) -> list[str]:
    """A header value split on the commas that separate values (not those in quotes or ``<…>``)."""
    if "," not in value:
        return [value] if value else []
    out: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            depth += 1
        elif c == ">":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            out.append(value[start:i].strip())
            start = i + 1
        i += 1
    out.append(value[start:].strip())
    return [v for v in out if v]


def _params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for part in text.split(";"):
        name, eq, val = part.strip().partition("=")
        if name:
            params[name.lower()] = val.strip().strip('"') if eq else None
    return params


def _after_addr(value: str) -> str:
    """The header parameters of a name-addr / addr-spec value (``;tag=…``), after the URI."""
    close = value.rfind(">")
    if close >= 0:
        return value[close + 1:]
    semi = value.find(";")
    return value[semi:] if semi >= 0 else ""


def _param(value: str, name: str) -> str:
    return _params(_after_addr(value)).get(name) or ""


def addr_uri(value: str) -> str:
    """The URI of a name-addr (``"Bob" <sip:bob@host>;tag=x``) or addr-spec (``sip:bob@host;tag=x``) value."""
    lt = value.find("<")
    if lt >= 0:
        gt = value.find(">", lt)
        return value[lt + 1:gt if gt > lt else len(value)].strip()
    return value.partition(";")[0].strip()


def uri_user(uri: str) -> str:
    """The user part of a ``sip:``/``sips:`` URI, or the number of a ``tel:`` URI, unescaped; "" when none."""
    scheme, colon, rest = uri.partition(":")
    if not colon:
        return ""
    scheme = scheme.strip().lower()
    if scheme == "tel":
        return unquote(rest.partition(";")[0].strip())[:128]
    if scheme not in ("sip", "sips"):
        return ""
    user, at, _host = rest.rpartition("@")
    if not at:
        return ""
    # user;params (RFC 4694 npdi, rn) and user:password: only the user.
    return unquote(user.partition(";")[0].partition(":")[0])[:128]


def with_user(uri: str, user: str) -> str:
    """``uri`` with its user part replaced by ``user`` (escaped), or given one when it has none."""
    scheme, _, rest = uri.partition(":")
    _old, at, host = rest.rpartition("@")
    return f"{scheme}:{quote(user, safe=_USER_SAFE)}@{host if at else rest}"


def _lines(head: str) -> list[str]:
    """Header lines with folded continuations (a line starting with space or tab) joined to the previous one."""
    if "\n " not in head and "\n\t" not in head:  # no folding (every proxy today): one split
        return head.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    for line in head.split("\n"):
        line = line.rstrip("\r")
        if line[:1] in (" ", "\t") and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


def parse_request(data: bytes, *, limit: int = MAX_MESSAGE, stream: bool = False) -> SipRequest:
    """One whole message: a request, or :class:`Drop`/:class:`BadRequest`.

    ``stream``: the message was framed by its ``Content-Length`` already (TCP), so the body is exact.
    """
    if len(data) > limit:
        raise Drop(DropKind.TOO_LARGE, f"message of {len(data)} bytes (at most {limit})")
    end = data.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end = data.find(b"\n\n")
        sep = 2
    if end < 0:  # a datagram holding only headers, with no blank line: accepted as UDP senders do
        end, sep = len(data), 0
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise Drop(DropKind.NOT_SIP, "header is not UTF-8") from None
    body = data[end + sep:]
    lines = _lines(head.lstrip("\r\n"))
    start = lines[0] if lines else ""
    if start.startswith("SIP/2.0 "):
        raise Drop(DropKind.RESPONSE, "a response")
    m = _START.fullmatch(start)
    if not m:
        raise Drop(DropKind.NOT_SIP, "not a SIP request line")
    method, uri = m.group(1).upper(), m.group(2)
    if len(lines) - 1 > MAX_HEADERS:
        raise Drop(DropKind.TOO_LARGE, f"more than {MAX_HEADERS} header lines")
    headers: list[tuple[str, str]] = []
    vias: list[str] = []
    problems: list[str] = []
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _TOKEN.fullmatch(name):
            problems.append("malformed header line")
            continue
        key = name.lower()
        key = COMPACT.get(key, key)
        value = value.strip()
        if key == "via":
            vias.extend(_split_commas(value))
        headers.append((key, value))
    found = dict(reversed(headers))  # the first value of each name
    missing = [h for h in ("from", "to", "call-id", "cseq") if not found.get(h)]
    if not vias:
        missing.insert(0, "via")
    if missing:
        raise Drop(DropKind.BAD_ACK if method == "ACK" else DropKind.INCOMPLETE,
                   f"{method} without {', '.join(missing)}")
    vm = _VIA.fullmatch(vias[0])
    if not vm:
        raise Drop(DropKind.BAD_ACK if method == "ACK" else DropKind.INCOMPLETE, "top Via is malformed")
    via = Via(vm.group(1).upper(), vm.group(2), _params(vm.group(3)), vias[0])
    cm = _CSEQ.fullmatch(found["cseq"])
    req = SipRequest(method, uri, tuple(headers), tuple(vias), via, found["from"], found["to"], found["call-id"],
                     int(cm.group(1)) if cm else 0, cm.group(2).upper() if cm else method, body)
    if method == "ACK" and (problems or not cm):
        raise Drop(DropKind.BAD_ACK, "malformed ACK")
    if problems:
        raise BadRequest(req, problems[0])
    if not cm:
        raise BadRequest(req, "malformed CSeq")
    if req.cseq_method != method:
        raise BadRequest(req, "CSeq method does not match the request")
    length = found.get("content-length")
    if length is not None:
        if not _DIGITS.fullmatch(length):
            raise BadRequest(req, "malformed Content-Length")
        if not stream and int(length) > len(body):  # RFC 3261 §18.3: a datagram cut short
            raise BadRequest(req, "body shorter than Content-Length")
    return req


def _top_via(req: SipRequest, received: tuple[str, int] | None) -> str:
    """The top Via as the response carries it: ``received`` and ``rport`` filled in (RFC 3261 §18.2.1,
    RFC 3581) when the request came from elsewhere than it says, so the response finds its way back."""
    via = req.via
    if received is None:
        return via.raw
    host, port = received
    extra = ""
    sent_host = via.sent_by.rpartition(":")[0] if via.sent_by.count(":") == 1 else via.sent_by
    if "received" not in via.params and sent_host.strip("[]") != host:
        extra += f";received={host}"
    raw = via.raw
    if "rport" in via.params and via.params["rport"] is None:
        raw = re.sub(r";\s*rport(?=\s*(;|$))", f";rport={port}", raw, count=1, flags=re.IGNORECASE)
    return raw + extra


def build_response(req: SipRequest, status: int, *, to_tag: str = "", reason: str = "",
                   headers: Iterable[tuple[str, str]] = (), received: tuple[str, int] | None = None) -> bytes:
    """The response to ``req``: its Via (in order), From, Call-ID and CSeq, its To with ``to_tag`` added when
    the request's To has none (RFC 3261 §8.2.6.2), then ``headers``, and no body."""
    to = req.to
    if to_tag and not req.to_tag:
        to = f"{to};tag={to_tag}"
    phrase = _clean(reason or REASONS.get(status, "Unknown"))
    out: list[str] = [f"SIP/2.0 {status} {phrase}"]
    vias: Sequence[str] = req.vias
    out.append(f"Via: {_top_via(req, received)}")
    out.extend(f"Via: {v}" for v in vias[1:])
    out.append(f"From: {req.from_}")
    out.append(f"To: {to}")
    out.append(f"Call-ID: {req.call_id}")
    out.append(f"CSeq: {req.cseq} {req.cseq_method}")
    if status == 100:
        ts = req.header("timestamp")  # RFC 3261 §8.2.6.1: a 100 copies the request's Timestamp
        if ts:
            out.append(f"Timestamp: {ts}")
    out.extend(f"{name}: {_clean(value)}" for name, value in headers)
    out.append(f"Server: {SERVER}")
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode("utf-8")


def _clean(text: str) -> str:
    """One line of text: no CR or LF can end up splitting a header (or a reason phrase) in two."""
    return " ".join(text.split())[:200]
