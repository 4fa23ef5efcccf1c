"""The audit record: what a compliance officer must be able to show for every decision.

And the one error every audit sink raises when it cannot keep a record: the service catches it (to refuse
the call), so it lives here, beside the record, and not in the service or the writer.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

_NO_LISTS: Mapping[str, str] = MappingProxyType({})


class Source(enum.StrEnum):
    """What asked for a decision: the ``source`` of its audit record (and of the decisions metric)."""

    AGI = "agi"  # a call, over FastAGI's check route
    API = "api"  # GET /api/check (not audited: a dry run)
    CLI = "cli"  # dnc-gateway check --record
    REPLAY = "replay"
    DRY_RUN = "dry_run"  # FastAGI's dryrun route (replay's default): decided and audited, no attempt counted
    SIP = "sip"  # an INVITE to the SIP redirect server
    DIALER = "dialer"  # POST /v1/decide: a dialer placing a call


class AuditUnavailable(Exception):
    """The audit log cannot make a record durable (disk full, I/O error)."""


class AuditRecord(NamedTuple):
    """One decision, as kept for proof. A NamedTuple: one is built on every call, on the reply path."""

    decision_id: str
    at: float  # UNIX time of the decision (UTC)
    campaign: str
    number: str  # E.164 (personal data: the audit store is admin-only)
    verdict: str
    reason: str | None
    rule: str
    would_block: bool
    mode: str
    regime: str
    lists: Mapping[str, str] = _NO_LISTS
    caller_id: str = ""
    channel: str = ""
    uniqueid: str = ""
    source: str = Source.AGI  # a Source: agi | api | cli | replay | dry_run
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id, "at": self.at, "campaign": self.campaign, "number": self.number,
            "verdict": self.verdict, "reason": self.reason, "rule": self.rule, "would_block": self.would_block,
            "mode": self.mode, "regime": self.regime, "lists": dict(self.lists), "caller_id": self.caller_id,
            "channel": self.channel, "uniqueid": self.uniqueid, "source": self.source, "detail": self.detail,
        }
