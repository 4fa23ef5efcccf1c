"""What ``/healthz`` says of the evidence: the audit trail and the call-history store (pure: their reports in).

A gateway whose audit file was deleted or replaced, whose disk stalls past ``[audit] commit_timeout``, or whose
history store was lost (gateway.state.marker) can only answer BLOCK: ``/healthz`` then says 503, so that a load
balancer or a dialplan's second gateway takes the calls. The live page reads the same fields (``audit``,
``audit_problem``, ``state_lost``) from ``/healthz``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.numbers import mask_digits


def audit_status(stats: Mapping[str, Any] | None) -> dict[str, Any]:
    """``audit``: off, on or unavailable; ``audit_problem``: why not available ("" when it is)."""
    if stats is None:
        return {"audit": "off", "audit_problem": ""}
    if stats.get("available"):
        return {"audit": "on", "audit_problem": ""}
    return {"audit": "unavailable",
            "audit_problem": mask_digits(str(stats.get("problem") or stats.get("last_error") or "not available"))}


def state_status(lost: str) -> dict[str, Any]:
    """``state_lost``: why the history store is not the one the gateway wrote ("" while it is)."""
    return {"state_lost": mask_digits(lost)}


def evidence_ok(body: Mapping[str, Any]) -> bool:
    """Whether calls can be allowed as far as the evidence goes (else ``/healthz`` answers 503)."""
    return body.get("audit") != "unavailable" and not body.get("state_lost")
