"""The one mutable thing on the hot path: the current Registries, swapped whole.

A reload builds every list off to the side (in a worker thread) and swaps the
reference only when all are built; a list that fails keeps its previous
version, so a corrupt file never empties a registry that was serving.

That a list's last reload failed is kept (``failures``) until a later load of it succeeds, with when and why:
the old version keeps serving, and /metrics, /healthz and the page all say so (issue 15 #8). The URL poller
records its failures here too, so that a list fed from a URL shows the same way.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from gateway.numbers import Normaliser
from gateway.registry.deltas import load_with_deltas
from gateway.registry.model import ListKind, ListMeta, ListSpec, Registries, RegistryError, RegistryList
from gateway.registry.report import LoadReport
from gateway.registry.sidestore import consent_dates

log = logging.getLogger(__name__)


class FailureOrigin(enum.StrEnum):
    """Which path failed to load a list: they clear differently (see ``RegistryHolder.clear_failure``)."""

    RELOAD = "reload"  # its file: start-up, SIGHUP, POST /api/registry/reload
    POLL = "poll"  # its URL, by the poller


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    """A list whose last load failed; the version in service (if any) is the previous one."""

    error: str  # as logged; may quote a bad line, so masked before it leaves the process (page, /healthz)
    at: float  # epoch seconds of the latest failure
    since: float  # epoch seconds of the first failure with no successful load since
    origin: FailureOrigin
    count: int = 1  # failures in a row

    def again(self, error: str, at: float, origin: FailureOrigin) -> ReloadFailure:
        return ReloadFailure(error, at, self.since, origin, self.count + 1)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    loaded: Mapping[str, ListMeta] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)
    reports: Mapping[str, LoadReport] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "loaded": {n: {"version": m.version, "count": m.count, "bad_lines": m.bad_lines}
                       for n, m in self.loaded.items()},
            "failed": dict(self.failed),
        }


class RegistryHolder:
    def __init__(self, specs: Mapping[str, ListSpec], normaliser: Normaliser, side_store: Path | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.specs = dict(specs)
        self.normaliser = normaliser
        self.side_store = side_store  # consent dates (proof of consent) live there, see registry/sidestore.py
        self.clock = clock  # epoch seconds, for when a load failed (the gateway passes its own clock)
        self.current = Registries(kinds={n: s.kind for n, s in specs.items()})
        self.failures: dict[str, ReloadFailure] = {}  # lists whose last load failed, until one succeeds
        # The latest failure of each list, kept after a success: a gauge of "when did it last fail".
        self.last_failure_at: dict[str, float] = {}
        self.last_result: ReloadResult | None = None
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[Registries, ReloadResult], None]] = []

    @property
    def errors(self) -> Mapping[str, str]:
        """Why each list's last load failed (only lists whose last load failed)."""
        return {n: f.error for n, f in self.failures.items()}

    def record_failure(self, name: str, error: str, origin: FailureOrigin) -> ReloadFailure:
        """Note that loading ``name`` failed now; the version in service, if any, stays."""
        at = self.clock()
        previous = self.failures.get(name)
        failure = previous.again(error, at, origin) if previous is not None else ReloadFailure(error, at, at, origin)
        self.failures[name] = failure
        self.last_failure_at[name] = at
        return failure

    def clear_failure(self, name: str, origin: FailureOrigin | None = None) -> None:
        """A load of ``name`` succeeded: its failure is over.

        With ``origin``, only a failure of that path is cleared: a poll that finds the URL unchanged says
        nothing of a local file that a SIGHUP failed to read (the poller's next update rewrites that file), and
        a local file that loads says nothing of a URL that fails.
        """
        failure = self.failures.get(name)
        if failure is not None and (origin is None or failure.origin is origin):
            del self.failures[name]

    def on_swap(self, listener: Callable[[Registries, ReloadResult], None]) -> None:
        self._listeners.append(listener)

    def load_list(self, spec: ListSpec) -> tuple[RegistryList, LoadReport]:
        return load_with_deltas(spec, self.normaliser)

    def load_all(self, names: list[str] | None = None) -> ReloadResult:
        """Load (or reload) lists synchronously and swap; safe to run in a worker thread."""
        started = time.perf_counter()
        old = self.current
        lists = dict(old.lists)
        loaded: dict[str, ListMeta] = {}
        failed: dict[str, str] = {}
        reports: dict[str, LoadReport] = {}
        for name in names or self.local_names():
            spec = self.specs[name]
            try:
                lst, report = self.load_list(spec)
            except (RegistryError, OSError) as e:
                failed[name] = str(e)
                kept = "keeping the previous version" if name in lists else "the list is not loaded"
                log.error("registry: %s: %s (%s)", name, e, kept)
                continue
            lists[name] = lst
            loaded[name] = lst.meta
            reports[name] = report
            if report.bad_count:
                log.warning("registry: %s", report.summary())
            log.info("registry: %s loaded: %d numbers, version %s", name, lst.meta.count, lst.meta.version)
        self.current = Registries(lists, self._consent_dates(old), {n: s.kind for n, s in self.specs.items()})
        for name in loaded:
            # A poll failure stays: the local copy loads, but the URL that should bring the next one still fails.
            self.clear_failure(name, FailureOrigin.RELOAD)
        for name, error in failed.items():
            self.record_failure(name, error, FailureOrigin.RELOAD)
        for name in set(self.failures) - set(self.specs):  # removed from the config by a reload
            del self.failures[name]
        result = ReloadResult(loaded, failed, reports, time.perf_counter() - started)
        self.last_result = result
        self._notify(result)
        return result

    def local_names(self) -> list[str]:
        """Lists read from a local file; a list with a URL and no path is the poller's to load."""
        return [n for n, s in self.specs.items() if s.path is not None or not s.url]

    def _consent_dates(self, old: Registries) -> Mapping[str, Mapping[int, date]]:
        if self.side_store is None or not self.side_store.exists():
            return old.consent_dates
        names = [n for n, s in self.specs.items() if s.kind is ListKind.CONSENT]
        try:
            return consent_dates(self.side_store, names)
        except sqlite3.Error as e:
            log.error("registry: cannot read consent dates from %s: %s (keeping the previous ones)", self.side_store, e)
            return old.consent_dates

    def install(self, lst: RegistryList) -> None:
        """Swap in one list built elsewhere (URL poller, API)."""
        self.current = self.current.replaced(lst)
        self.clear_failure(lst.name)
        self._notify(ReloadResult({lst.name: lst.meta}))

    def poll_failed(self, name: str, error: str) -> None:
        """The URL poller could not bring a new version of ``name``: recorded, and the page told at once."""
        self.record_failure(name, error, FailureOrigin.POLL)
        self._notify(ReloadResult(failed={name: error}))

    def _notify(self, result: ReloadResult) -> None:
        for listener in self._listeners:
            listener(self.current, result)

    async def reload(self, names: list[str] | None = None) -> ReloadResult:
        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(None, self.load_all, names)
