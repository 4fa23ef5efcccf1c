"""The one mutable thing on the hot path: the current Registries, swapped whole.

A reload builds every list off to the side (in a worker thread) and swaps the
reference only when all are built; a list that fails keeps its previous
version, so a corrupt file never empties a registry that was serving.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from gateway.numbers import Normaliser
from gateway.registry.deltas import load_with_deltas
from gateway.registry.loaders import LoadReport
from gateway.registry.model import ListKind, ListMeta, ListSpec, Registries, RegistryError, RegistryList
from gateway.registry.sidestore import consent_dates

log = logging.getLogger(__name__)


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
    def __init__(self, specs: Mapping[str, ListSpec], normaliser: Normaliser, side_store: Path | None = None) -> None:
        self.specs = dict(specs)
        self.normaliser = normaliser
        self.side_store = side_store  # consent dates (proof of consent) live there, see registry/sidestore.py
        self.current = Registries(kinds={n: s.kind for n, s in specs.items()})
        self.errors: dict[str, str] = {}
        self.last_result: ReloadResult | None = None
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[Registries, ReloadResult], None]] = []

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
            self.errors.pop(name, None)
        self.errors.update(failed)
        result = ReloadResult(loaded, failed, reports, time.perf_counter() - started)
        self.last_result = result
        for listener in self._listeners:
            listener(self.current, result)
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
        self.errors.pop(lst.name, None)
        result = ReloadResult({lst.name: lst.meta})
        for listener in self._listeners:
            listener(self.current, result)

    async def reload(self, names: list[str] | None = None) -> ReloadResult:
        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(None, self.load_all, names)
