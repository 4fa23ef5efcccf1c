"""The calls of a trace, as values: what every trace reader produces and the runner and report read."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Users that mean "no caller ID" (RFC 3323 anonymity and what phones put in From).
ANONYMOUS = frozenset({"", "anonymous", "unknown", "restricted", "unavailable", "private"})


class InputError(Exception):
    """The trace cannot be read (exit 2): the message names the file and, if any, the line."""


class Event(enum.StrEnum):
    """What a line of a trace records: a call to decide, or what a callee said after one (plain CSV ``event``).

    Only an offline replay uses the last two: they build the number's history at their time, as the gateway's
    ``refusal`` and ``optout`` routes would have; an online replay asks for decisions only and skips them.
    """

    CALL = "call"
    REFUSAL = "refusal"
    OPTOUT = "optout"


class Call(NamedTuple):
    """One line of a trace. A NamedTuple rather than a frozen dataclass: one is built per line, and an offline
    replay reads hundreds of thousands a second (a tuple is built several times faster, and as immutable)."""

    number: str  # as dialled: Request-URI user (or To user), parameters stripped
    campaign: str = ""  # "" when the trace does not say
    caller_id: str = ""  # "" when unknown or anonymous
    at: float | None = None  # UNIX time; None when the source has no time (SIPp CSV)
    call_id: str = ""
    origin: str = ""  # where in the source: "frame 12", "line 3"
    event: Event = Event.CALL


@dataclass(frozen=True, slots=True)
class Trace:
    calls: tuple[Call, ...]
    kind: str  # pcap | pcapng | sipp-csv | csv
    stats: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "calls": len(self.calls), "stats": dict(self.stats),
                "warnings": list(self.warnings)}
