"""What the live page shows of FastAGI and the call-history store (pure: the parts' reports in, plain values out).

The audit log's report is already in the live status (``Api.live_status``); these two complete the page's health
panel, so that a supervisor sees on one screen what the shipped alerts watch: FastAGI errors, the store up or
down, the audit queue and its failures. Never a number: an error text is masked, kinds are bounded codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from gateway.metrics import state_health
from gateway.numbers import mask_digits

RECENT_MINUTES = 10


class Counts(Protocol):
    """FastAGI's and the state store's error counts as ``gateway.metrics.Metrics`` keeps them."""

    def agi_report(self, minutes: int) -> Mapping[str, Any]: ...

    def state_error_counts(self) -> Mapping[str, int]: ...


@runtime_checkable
class StoreError(Protocol):
    """A store that says why it failed last (Redis; the embedded store while it loads)."""

    @property
    def last_error(self) -> str: ...


def agi_status(metrics: Counts | None) -> dict[str, Any]:
    """``{"errors": {kind: n}, "total": n, "recent": n, "recent_minutes": 10, "sessions": {...}}``; empty without
    metrics (a test server)."""
    if metrics is None:
        return {}
    report = metrics.agi_report(RECENT_MINUTES)
    return {str(k): v for k, v in report.items()} | {"recent_minutes": RECENT_MINUTES}


def state_status(url: str, store: object, metrics: Counts | None) -> dict[str, Any]:
    """The call-history store: its kind (``redis``, ``sqlite``, ``memory``), up or not, why, errors since start."""
    kind = url.split("://", 1)[0] if "://" in url else url
    health = state_health(store)
    up = health.healthy if health is not None else True
    error = store.last_error if isinstance(store, StoreError) else ""
    return {"kind": kind, "up": bool(up), "last_error": mask_digits(error) if error else None,
            "errors": dict(metrics.state_error_counts()) if metrics is not None else {}}
