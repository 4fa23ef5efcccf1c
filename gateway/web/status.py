"""What the page and ``/healthz`` say about the registries and the AMI link (pure: values and ``today`` in).

Freshness levels, worst last: ``ok``; ``warn`` once a list has used 80 % of its
maximum age (time to fetch the next extract); ``stale`` past it (campaigns that
need the list block with ``registry_stale``); ``missing`` when no version is in
service. Ages are whole days from the as-of date, as the policy engine counts.

Freshness is about the version in service; a failed reload is said apart (``reload_failed``, with when and
why): the previous version keeps serving, so the list is not "missing", but the newer extract did not arrive.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date
from typing import Any, Protocol

from gateway.numbers import mask_digits
from gateway.policy.packs import list_max_age
from gateway.redact import redact_text
from gateway.registry.holder import ReloadFailure
from gateway.registry.model import ListSpec, Registries

WARN_SHARE = 0.8


def mask_text(text: str) -> str:
    """A loader's error may quote the bad line, a number: every run of six digits or more is masked; and a
    fetch error may quote the list's URL: its password and query tokens are hidden."""
    return mask_digits(redact_text(text))


class Freshness(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    STALE = "stale"
    MISSING = "missing"


def freshness(age_days: int | None, max_age_days: int | None, loaded: bool) -> Freshness:
    if not loaded:
        return Freshness.MISSING
    if max_age_days is None:
        return Freshness.OK
    if age_days is None or age_days > max_age_days:
        return Freshness.STALE  # undated with a maximum age: the engine treats it as stale too
    if age_days >= WARN_SHARE * max_age_days:
        return Freshness.WARN
    return Freshness.OK


def failure_status(failure: ReloadFailure) -> dict[str, Any]:
    """A failed reload as the page and /healthz show it; the error masked (it may quote a bad line)."""
    return {"error": mask_text(failure.error), "at": failure.at, "since": failure.since,
            "origin": str(failure.origin), "count": failure.count}


def lists_status(specs: Mapping[str, ListSpec], regs: Registries, failures: Mapping[str, ReloadFailure],
                 today: date) -> list[dict[str, Any]]:
    out = []
    for name, spec in specs.items():
        failure = failures.get(name)
        lst = regs.get(name)
        meta = lst.meta if lst is not None else None
        age = meta.age_days(today) if meta is not None else None
        limit, legal = list_max_age(spec.kind, spec.country, spec.max_age_days)  # the engine's: the law's default
        out.append({
            "name": name,
            "kind": str(spec.kind),
            "loaded": meta is not None,
            "count": meta.count if meta is not None else 0,
            "version": meta.version if meta is not None else None,
            "as_of": meta.as_of.isoformat() if meta is not None and meta.as_of else None,
            "age_days": age,
            "max_age_days": limit,
            "legal_max_age": legal.cite.text if legal is not None else None,
            "freshness": str(freshness(age, limit, meta is not None)),
            "error": mask_text(failure.error) if failure is not None else None,
            "reload_failed": failure_status(failure) if failure is not None else None,
        })
    return out


class AmiStatus(Protocol):
    """What the page and ``/healthz`` read of the AMI watcher (``gateway.ami.watcher.AmiWatcher``)."""

    @property
    def connected(self) -> bool: ...

    def status(self) -> Mapping[str, object]: ...


def ami_status(ami: AmiStatus | None) -> dict[str, Any]:
    """``off`` when no [ami] is configured; otherwise whatever the watcher reports, reduced to plain values."""
    if ami is None:
        return {"state": "off", "connected": None}
    connected = bool(ami.connected)
    out: dict[str, Any] = {"state": "connected" if connected else "disconnected", "connected": connected}
    try:
        detail = ami.status()
    except Exception:  # the watcher's own report must not break the page
        return out
    # Plain values only, and never a credential or a number, whatever a later watcher adds to its report.
    out["detail"] = {str(k): v for k, v in detail.items() if isinstance(v, str | int | float | bool)
                     and k not in ("number", "secret", "password")}
    return out
