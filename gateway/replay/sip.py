"""Sans-I/O SIP message parsing: just enough of RFC 3261 to find the calls in a trace.

Written here rather than taken from ``dpkt.sip``: dpkt parses SIP with its HTTP
code, which ignores compact header forms (``l:`` for Content-Length, ``i:``,
``t:``...) and frames bodies the HTTP way (chunked, read to end), so it splits a
TCP stream of SIP messages wrongly. No I/O here: bytes in, messages out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = [
    "COMPACT",
    "MAX_MESSAGE",
    "SipError",
    "SipMessage",
    "SipStream",
    "addr_params",
    "addr_uri",
    "parse_message",
    "uri_user",
]

# RFC 3261 §7.3.3 and later RFCs: compact form -> long form (lower case).
COMPACT: dict[str, str] = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "n": "identity-info", "o": "event", "r": "refer-to",
    "s": "subject", "t": "to", "u": "allow-events", "v": "via", "x": "session-expires", "y": "identity",
}

MAX_MESSAGE = 65536  # bytes of start line + headers + body: larger is not SIP we can trust
_START = re.compile(rb"^(?:[A-Za-z]+ \S+ SIP/2\.0|SIP/2\.0 \d{3}(?: .*)?)\r?$")
_REQUEST = re.compile(r"^([A-Za-z]+) (\S+) SIP/2\.0$")
_RESPONSE = re.compile(r"^SIP/2\.0 (\d{3})(?: (.*))?$")
_VISUAL = str.maketrans("", "", "-.() ")


class SipError(ValueError):
    """Bytes that are not a SIP message (the reason says why)."""


@dataclass(frozen=True, slots=True)
class SipMessage:
    method: str  # "" for a response
    uri: str  # Request-URI, "" for a response
    status: int  # 0 for a request
    headers: tuple[tuple[str, str], ...]  # (long lower-case name, value) in order
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return not self.status

    def header(self, name: str) -> str | None:
        """First value of a header, by long or compact name, case-insensitive."""
        key = name.lower()
        key = COMPACT.get(key, key)
        for n, v in self.headers:
            if n == key:
                return v
        return None


def _header_name(name: str) -> str:
    key = name.strip().lower()
    return COMPACT.get(key, key)


def _split_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Start line and unfolded headers of a message head (no body)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")  # RFC 3261 allows UTF-8 only, but a wrong byte must not lose the call
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:  # folded continuation (RFC 3261 §7.3.1)
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise SipError(f"malformed header line {line[:60]!r}")
        headers.append((_header_name(name), value.strip()))
    return start, headers


def _build(start: str, headers: list[tuple[str, str]], body: bytes) -> SipMessage:
    if m := _REQUEST.match(start):
        return SipMessage(m.group(1).upper(), m.group(2), 0, tuple(headers), body)
    if m := _RESPONSE.match(start):
        return SipMessage("", "", int(m.group(1)), tuple(headers), body)
    raise SipError(f"not a SIP start line: {start[:60]!r}")


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name == "content-length":
            if not value.isdigit():
                raise SipError(f"bad Content-Length {value[:20]!r}")
            return int(value)
    return None


def _head_end(data: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """(end of head, start of body), or (-1, -1) when the blank line is not there yet."""
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, crlf + 4
    if lf >= 0:
        return lf, lf + 2
    return -1, -1


def looks_like_sip(data: bytes) -> bool:
    """A cheap test on a datagram's first line, to count non-SIP packets without parsing them."""
    first = data[:200].split(b"\n", 1)[0]
    return bool(_START.match(first))


def parse_message(data: bytes, *, partial: bool = False) -> SipMessage:
    """One datagram -> one message (RFC 3261 §18.3: over UDP the body ends at the datagram's end
    when there is no Content-Length; a shorter Content-Length truncates it).

    ``partial``: the capture cut the datagram (snap length); a complete head is enough.
    """
    if not looks_like_sip(data):
        raise SipError("not SIP")
    end, body_at = _head_end(data)
    if end < 0:
        raise SipError("no blank line after the headers (truncated?)")
    head, body = data[:end], data[body_at:]
    start, headers = _split_head(head)
    length = _content_length(headers)
    if length is not None:
        if length > len(body) and not partial:
            raise SipError(f"body shorter than Content-Length ({len(body)} < {length} bytes)")
        body = body[:length]
    return _build(start, headers, body)


class SipStream:
    """Frames SIP messages out of one direction of a TCP connection (RFC 3261 §18.3).

    Feed it the bytes in order; it returns whole messages as their Content-Length
    (long or compact) completes them. Keep-alive CRLFs are skipped. Garbage (a capture
    that starts mid-message, a lost segment) is skipped up to the next line that looks
    like a SIP start line, and counted in ``skipped``.
    """

    def __init__(self, limit: int = MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self.limit = limit
        self.skipped = 0  # bytes thrown away while resynchronising
        self.errors: list[str] = []

    def feed(self, data: bytes) -> list[SipMessage]:
        self._buf += data
        out: list[SipMessage] = []
        while True:
            msg = self._next()
            if msg is None:
                return out
            out.append(msg)

    def close(self) -> int:
        """End of stream: the number of bytes left that never made a whole message."""
        left = len(self._buf.strip(b"\r\n"))
        self._buf.clear()
        return left

    def _next(self) -> SipMessage | None:
        while True:
            # Keep-alives (RFC 5626 §3.5.1): a double CRLF ping, a single CRLF pong.
            lead = len(self._buf) - len(self._buf.lstrip(b"\r\n"))
            if lead:
                del self._buf[:lead]
            if not self._buf:
                return None
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > 512:  # longer than any start line: garbage
                    self.skipped += len(self._buf)
                    self._buf.clear()
                return None
            if not _START.match(bytes(self._buf[:nl])):
                # Mid-message start of capture, or a lost segment: skip a line and look again.
                self.skipped += nl + 1
                del self._buf[:nl + 1]
                continue
            end, body_at = _head_end(self._buf)
            if end < 0:
                if len(self._buf) > self.limit:
                    self.errors.append(f"SIP head larger than {self.limit} bytes: skipped")
                    self.skipped += nl + 1
                    del self._buf[:nl + 1]
                    continue
                return None
            try:
                start, headers = _split_head(bytes(self._buf[:end]))
                length = _content_length(headers) or 0  # mandatory over TCP: absent means no body
            except SipError as e:
                self.errors.append(str(e))
                self.skipped += body_at
                del self._buf[:body_at]
                continue
            if length > self.limit:
                self.errors.append(f"Content-Length {length} larger than {self.limit}: message skipped")
                self.skipped += body_at
                del self._buf[:body_at]
                continue
            if len(self._buf) < body_at + length:
                return None
            body = bytes(self._buf[body_at:body_at + length])
            del self._buf[:body_at + length]
            return _build(start, headers, body)


def _skip_quoted(value: str, i: int) -> int:
    """Index just past the closing quote of a quoted string starting at ``value[i] == '"'``."""
    i += 1
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == '"':
            return i + 1
        i += 1
    return i


def _split_addr(value: str) -> tuple[str, str]:
    """(URI, header parameters) of a name-addr or addr-spec header value (From, To, PAI)."""
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == '"':
            i = _skip_quoted(value, i)
            continue
        if ch == "<":
            close = value.find(">", i)
            if close < 0:
                return value[i + 1:].strip(), ""
            return value[i + 1:close].strip(), value[close + 1:]
        i += 1
    # addr-spec without brackets: every ';' parameter belongs to the header (RFC 3261 §20.10)
    uri, _, params = value.partition(";")
    return uri.strip(), params


def addr_uri(value: str) -> str:
    return _split_addr(value)[0]


def addr_params(value: str) -> dict[str, str]:
    """Header parameters (``tag``...) of a From/To value, names lower-cased."""
    out: dict[str, str] = {}
    for part in _split_addr(value)[1].split(";"):
        name, _, val = part.strip().partition("=")
        if name:
            out[name.lower()] = val.strip()
    return out


def uri_user(uri: str) -> str:
    """The user part of a sip:/sips:/tel: URI, without its parameters (``;phone-context``,
    ``;isub``...), percent-decoded; a telephone number loses its visual separators
    (RFC 3966 §5.1.1). "" when the URI has no user part."""
    scheme, sep, rest = uri.partition(":")
    if not sep:
        return ""
    scheme = scheme.strip().lower()
    if scheme == "tel":
        user = rest
    elif scheme in ("sip", "sips"):
        if "@" not in rest:
            return ""
        user = rest.rsplit("@", 1)[0]
        user = user.split(":", 1)[0]  # user:password (deprecated, still seen)
    else:
        return ""
    user = unquote(user.split(";", 1)[0].split("?", 1)[0]).strip()
    phone = user.translate(_VISUAL)
    if phone and (phone.lstrip("+").isdigit() or set(phone) <= set("+0123456789*#")):
        return phone
    return user


def iter_header_values(msg: SipMessage, name: str) -> Iterator[str]:
    key = _header_name(name)
    for n, v in msg.headers:
        if n == key:
            yield v
