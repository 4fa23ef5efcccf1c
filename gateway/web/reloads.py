"""A reload as the operator sees it: what ``POST /api/reload`` (and so ``dnc-gateway reload``) answers, and
the refused config that ``/healthz``, ``/metrics`` and the page show until a later reload applies one.

A refused config leaves the running one in place, like a refused list leaves its previous version: the
gateway keeps answering, and every surface says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from gateway.redact import redact_text
from gateway.web.status import mask_text


@dataclass(frozen=True, slots=True)
class ConfigFailure:
    """The config file's last reload was refused: why, and since when (epoch seconds)."""

    error: str
    at: float
    since: float
    count: int = 1

    def again(self, error: str, at: float) -> ConfigFailure:
        return ConfigFailure(error, at, self.since, self.count + 1)

    def as_json(self) -> dict[str, object]:
        return {"error": mask_text(self.error), "at": self.at, "since": self.since, "count": self.count}


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What one reload did: the config applied or refused, the lists loaded, refused or held back."""

    config_error: str | None = None  # None: applied (or no config file to read)
    loaded: Mapping[str, str] = field(default_factory=dict)  # list -> version now in service
    failed: Mapping[str, str] = field(default_factory=dict)  # list -> why its new version was refused

    @property
    def ok(self) -> bool:
        return self.config_error is None and not self.failed

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok,
                "config": {"applied": self.config_error is None,
                           "error": mask_text(redact_text(self.config_error)) if self.config_error else None},
                "lists": {"loaded": dict(self.loaded), "failed": {n: mask_text(e) for n, e in self.failed.items()}}}


Reloader = Callable[[], Awaitable[ReloadReport]]
