"""What goes wrong between the two ends of a FastAGI session: one enum of kinds, one base exception.

The gateway's side (``agi/protocol.py``: the peer did not speak FastAGI as Asterisk does) and the replay's side
(``replay/fastagi.py``: the gateway could not be reached, stayed silent, cut the connection) raise subclasses of
:class:`FastAgiError`, each with its :class:`FaultKind` (a bounded value: a metric label, a report column) and
the message for people.
"""

from __future__ import annotations

import enum


class FaultKind(enum.StrEnum):
    PROTOCOL = "protocol"  # the peer did not speak FastAGI as Asterisk does
    HEADER_TOO_LARGE = "header_too_large"  # an environment block over the limit
    EOF = "eof"  # the connection closed in the middle of a block or a reply
    UNREACHABLE = "unreachable"  # the gateway could not be connected to
    TIMEOUT = "timeout"  # the gateway did not close the session in time
    RESET = "reset"  # the connection was lost in the middle of the session


class FastAgiError(Exception):
    """A FastAGI session that went wrong: ``kind`` says how (bounded), the message says what and where."""

    def __init__(self, kind: FaultKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
