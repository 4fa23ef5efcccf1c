"""The recorded AMI stream of Asterisk 23.4.1, split into its messages (bytes kept exactly as received)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

FIXTURE = Path(__file__).parent.parent / "fixtures" / "asterisk-23.4.1" / "ami-outbound-calls.raw"
# Asterisk 23.4.1 running asterisk-config/ during tests/e2e/test_asterisk.py, as the gateway's watcher got it.
E2E_FIXTURE = FIXTURE.with_name("ami-e2e-session.raw")
E2E_BYPASS_CHANNEL = "PJSIP/agent2-00000010"  # dials 8 + 0612000003: the trunk with no decision
E2E_EMERGENCY_CHANNEL = "PJSIP/agent1-0000000e"  # dials 112: the trunk with no decision, rightly
END = b"\r\n\r\n"

BLOCKED_UID = "1795418526.10"  # PJSIP/sipp-0000000a dials 0612000001: BLOCK, Hangup(21)
ALLOWED_UID = "1795418526.11"  # PJSIP/sipp-0000000b dials 0612000002: ALLOW, Dial(PJSIP/...@trunk)
TRUNK_UID = "1795418526.12"  # PJSIP/trunk-0000000c, the outbound leg
BLOCKED_CHANNEL = "PJSIP/sipp-0000000a"
ALLOWED_CHANNEL = "PJSIP/sipp-0000000b"


@dataclass(frozen=True)
class Recording:
    banner: bytes  # "Asterisk Call Manager/12.0.0\r\n"
    login: bytes  # the answer to Login (ActionID 1)
    events: tuple[bytes, ...]  # every event, each with its blank line
    pong: bytes  # the answer to Ping (ActionID 2)
    goodbye: bytes  # the answer to Logoff (ActionID 3)

    @property
    def raw(self) -> bytes:
        return self.banner + self.login + b"".join(self.events) + self.pong + self.goodbye


def split(data: bytes) -> list[bytes]:
    """Messages, each ending with its blank line; the input must end on a message boundary."""
    parts = data.split(END)
    assert parts[-1] == b"", "stream does not end on a message boundary"
    return [p + END for p in parts[:-1]]


def headers(message: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in message.decode("utf-8").split("\r\n"):
        if ": " in line:
            k, v = line.split(": ", 1)
            out[k] = v
        elif line.endswith(":"):
            out[line[:-1]] = ""
    return out


def load(path: Path = FIXTURE) -> Recording:
    data = path.read_bytes()
    banner, sep, rest = data.partition(b"\r\n")
    messages = split(rest)
    login, *events, pong, goodbye = messages
    assert headers(login).get("Message") == "Authentication accepted"
    assert headers(pong).get("Ping") == "Pong"
    assert headers(goodbye).get("Response") == "Goodbye"
    assert all(m.startswith(b"Event: ") for m in events)
    return Recording(banner + sep, login, tuple(events), pong, goodbye)


def load_events(path: Path = E2E_FIXTURE) -> tuple[bytes, ...]:
    """The events of a recorded session, each byte for byte; the responses to the watcher's actions left out."""
    _banner, _sep, rest = path.read_bytes().partition(b"\r\n")
    return tuple(m for m in split(rest) if m.startswith(b"Event: "))


_SCREENING_VARS = {"DNC_VERDICT", "DNC_REASON", "DNC_DECISION_ID", "DNC_WOULD_BLOCK", "AGISTATUS"}


def bypass(rec: Recording) -> Recording:
    """The allowed call as a dialplan that skips the gateway would make it: no AGI, no DNC_* variables,
    the same DialBegin to the trunk. Every kept message is byte for byte the recorded one."""
    def screened(m: bytes) -> bool:
        h = headers(m)
        if h.get("Uniqueid") != ALLOWED_UID:
            return False
        return h.get("Variable") in _SCREENING_VARS or h.get("Application") in ("AGI", "GotoIf")
    return replace(rec, events=tuple(m for m in rec.events if not screened(m)))


def with_action_id(message: bytes, action_id: str | None) -> bytes:
    """The recorded response for another ActionID (without one, Asterisk writes no ActionID line)."""
    line = b"" if action_id is None else b"ActionID: " + action_id.encode() + b"\r\n"
    out, n = re.subn(rb"^ActionID: [^\r\n]*\r\n", lambda _m: line, message, count=1, flags=re.MULTILINE)
    assert n == 1
    return out
