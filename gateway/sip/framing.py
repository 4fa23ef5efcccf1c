"""SIP over a stream (TCP), sans-I/O: bytes in, whole messages out, framed by ``Content-Length``
(RFC 3261 §18.3: on a stream it is mandatory; a message without it has no body).

Limits, as h11 keeps them: a header block that does not end within ``limit`` bytes, or a
``Content-Length`` that would take the message over it, is a :class:`FramingError` and the connection is
closed (nothing later on it can be framed). ``receive_data(b"")`` is the end of the stream. CRLF keep-alives
between messages (RFC 5626 §4.4.1: a double CRLF ping) are skipped, and a ping is answered with one CRLF
(:attr:`StreamFramer.pongs`).
"""

from __future__ import annotations

import re
from typing import Final

from gateway.sip.message import MAX_MESSAGE

__all__ = ["FramingError", "StreamFramer"]

_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d{1,10})[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
PONG: Final = b"\r\n"


class FramingError(Exception):
    """The stream cannot be framed any more (too large, a bad ``Content-Length``): close the connection."""


class StreamFramer:
    def __init__(self, limit: int = MAX_MESSAGE) -> None:
        self.limit = limit
        self._buf = bytearray()
        self.closed = False
        self.pongs = 0  # keep-alive pings seen and not yet answered (the adapter writes PONG for each)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def receive_data(self, data: bytes) -> list[bytes]:
        """The whole messages ``data`` completes, in order ([] when more is needed)."""
        if self.closed:
            return []
        if not data:
            self.closed = True
            return []
        self._buf += data
        out: list[bytes] = []
        buf = self._buf
        while True:
            skipped = 0
            while skipped < len(buf) and buf[skipped] in (0x0D, 0x0A):
                skipped += 1
            if skipped:
                if b"\r\n\r\n" in buf[:skipped]:
                    self.pongs += 1
                del buf[:skipped]
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.limit:
                    raise FramingError(f"no end of headers within {self.limit} bytes")
                return out
            head = bytes(buf[:end])
            m = _LENGTH.search(head)
            length = int(m.group(1)) if m else 0
            total = end + 4 + length
            if total > self.limit:
                raise FramingError(f"message of {total} bytes (at most {self.limit})")
            if len(buf) < total:
                return out
            out.append(bytes(buf[:total]))
            del buf[:total]
