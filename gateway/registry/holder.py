"""The one mutable thing on the hot path: the current Registries, swapped whole.

A reload builds every list off to the side (in a worker thread) and swaps the
reference only when all are built; a list that fails keeps its previous
version, so a corrupt file never empties a registry that was serving.

That a list's last reload failed is kept (``failures``) until a later load of it succeeds, with when and why:
the old version keeps serving, and /metrics, /healthz and the page all say so (issue 15 #8). The URL poller
records its failures here too, so that a list fed from a URL shows the same way.

The side store decides too (issue 13): its entries are applied on top of the lists as loaded (the *base*
versions, kept here), and its withdrawals of consent go into the snapshot (``Registries.withdrawals``). A
change to it swaps a new snapshot without reading any list file again (:meth:`RegistryHolder.refresh_side`):
at once for what this gateway records, within ``SIDE_POLL_SECONDS`` for what another process (the CLI)
writes to the file.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

from pyroaring import FrozenBitMap64

from gateway.aio import cancel
from gateway.numbers import Normaliser
from gateway.registry import inservice
from gateway.registry.consent_csv import ConsentFile
from gateway.registry.deltas import load_with_deltas
from gateway.registry.guard import Shrink, limit_of, shrink, shrink_from_count
from gateway.registry.model import ListKind, ListMeta, ListSpec, Registries, RegistryError, RegistryList
from gateway.registry.report import LoadReport
from gateway.registry.sidestore import MAX_AGE_DAYS, PROOF_YEARS, ConsentDate, Overlay, SideStore, later

log = logging.getLogger(__name__)

SIDE_POLL_SECONDS = 1.0  # how often a running gateway looks for entries another process wrote to its side store
_RELATIONSHIP = (ListKind.CUSTOMERS, ListKind.INQUIRIES)  # lists whose rows may carry a relationship's date


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


def named(name: str, error: Exception) -> str:
    """A list's error with the list's name in front, once (a loader's RegistryError already starts with it)."""
    text = str(error)
    return text if text.startswith(f"{name}: ") else f"{name}: {text}"


def _countries(specs: Mapping[str, ListSpec]) -> dict[str, str]:
    """The national lists' countries (``[lists.X] country``): the others apply to every call."""
    return {n: s.country for n, s in specs.items() if s.country}


class RegistryHolder:
    def __init__(self, specs: Mapping[str, ListSpec], normaliser: Normaliser, side_store: Path | None = None, *,
                 clock: Callable[[], float] = time.time, proof_years: int = PROOF_YEARS,
                 max_age_days: int = MAX_AGE_DAYS) -> None:
        self.specs = dict(specs)
        self.normaliser = normaliser
        self.side_store = side_store  # consents, opt-outs and their proof, see registry/sidestore.py
        self.clock = clock  # epoch seconds, for when a load failed (the gateway passes its own clock)
        self.proof_years = proof_years  # the side store's retention (its purge)
        self.max_age_days = max_age_days
        self.current = Registries(kinds={n: s.kind for n, s in specs.items()}, countries=_countries(specs))
        self._base: dict[str, RegistryList] = {}  # lists as loaded, before the side store's entries
        self._files: dict[str, ConsentFile] = {}  # what each consent-csv list's last load read
        self._dated: dict[str, Mapping[int, date]] = {}  # each relationship-csv list's dates, as last loaded
        self._store: SideStore | None = None  # opened at the first use; shared with the service's writes
        self._store_lock = threading.Lock()  # loads run in a worker thread, records on the event loop
        self._store_version = -1
        self._purged_on: date | None = None
        self._watch: asyncio.Task[None] | None = None
        self.failures: dict[str, ReloadFailure] = {}  # lists whose last load failed, until one succeeds
        # The latest failure of each list, kept after a success: a gauge of "when did it last fail".
        self.last_failure_at: dict[str, float] = {}
        self.last_result: ReloadResult | None = None
        # New versions refused for dropping too many numbers (registry/guard.py), kept until accepted.
        self.held: dict[str, tuple[RegistryList, Shrink]] = {}
        # The guard's reference across restarts: counts of the guarded lists last in service (inservice.py).
        self.in_service_path = side_store.parent / inservice.FILE_NAME if side_store is not None else None
        self._served = inservice.read(self.in_service_path) if self.in_service_path is not None else {}
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
        lists = dict(self._base)
        loaded: dict[str, ListMeta] = {}
        failed: dict[str, str] = {}
        reports: dict[str, LoadReport] = {}
        for name in names or self.local_names():
            spec = self.specs[name]
            try:
                lst, report = self.load_list(spec)
            except Exception as e:
                failed[name] = named(name, e) if isinstance(e, RegistryError | OSError) else \
                    f"{name}: cannot be loaded: {type(e).__name__}: {e}"
                kept = "keeping the previous version" if name in lists else "the list is not loaded"
                log.error("registry: %s (%s)", failed[name], kept)
                continue
            refused = self._hold(lists.get(name), lst, spec)
            if refused is not None:
                failed[name] = refused.message()
                log.error("registry: %s", failed[name])
                continue
            lists[name] = lst
            loaded[name] = lst.meta
            reports[name] = report
            if report.consents is not None:
                self._files[name] = report.consents
                if report.consents.undated or report.consents.future:
                    log.warning("registry: %s: %d consents without a date, %d dated in the future%s", name,
                                report.consents.undated, len(report.consents.future),
                                f" (first on line {report.consents.future[0][0]})" if report.consents.future else "")
                self._sync_file(name, report.consents)
            else:
                self._files.pop(name, None)
            if report.relationships is not None:
                self._dated[name] = report.relationships.dates
                if report.relationships.undated:
                    log.warning("registry: %s: %d numbers without a date (undated_relationship decides)", name,
                                report.relationships.undated)
            else:
                self._dated.pop(name, None)
            if report.bad_count:
                log.warning("registry: %s", report.summary())
            log.info("registry: %s loaded: %d numbers, version %s", name, lst.meta.count, lst.meta.version)
        self._base = lists
        self._note_served()
        self.current = self._snapshot(lists, self._overlay(old))
        self._purge()
        for name in loaded:
            # A poll failure stays: the local copy loads, but the URL that should bring the next one still fails.
            self.clear_failure(name, FailureOrigin.RELOAD)
        for name, error in failed.items():
            self.record_failure(name, error, FailureOrigin.RELOAD)
        for name in set(self.failures) - set(self.specs):  # removed from the config by a reload
            del self.failures[name]
        for name in set(self.held) - set(self.specs):
            del self.held[name]
        result = ReloadResult(loaded, failed, reports, time.perf_counter() - started)
        self.last_result = result
        self._notify(result)
        return result

    def local_names(self) -> list[str]:
        """Lists read from a local file; a list with a URL and no path is the poller's to load."""
        return [n for n, s in self.specs.items() if s.path is not None or not s.url]

    # -- the side store ----------------------------------------------------------------------------

    def side(self) -> SideStore | None:
        """The side store, opened once (None without one); use it under :attr:`side_lock`."""
        if self._store is None and self.side_store is not None:
            self._store = SideStore(self.side_store, proof_years=self.proof_years, max_age_days=self.max_age_days,
                                    check_same_thread=False)
        return self._store

    @property
    def side_lock(self) -> threading.Lock:
        return self._store_lock

    def _overlay(self, old: Registries) -> Overlay | None:
        """The side store's entries for the configured lists; None: keep what the snapshot has (unreadable)."""
        if self.side_store is None or (self._store is None and not self.side_store.exists()):
            return Overlay()
        consent = [n for n, s in self.specs.items() if s.kind is ListKind.CONSENT]
        optout = [n for n, s in self.specs.items() if s.kind is ListKind.INTERNAL_DNC]
        dated = [n for n, s in self.specs.items() if s.kind in _RELATIONSHIP]
        try:
            with self._store_lock:
                store = self.side()
                assert store is not None
                self._store_version = store.data_version()
                return store.overlay(consent, optout, dated)
        except sqlite3.Error as e:
            log.error("registry: cannot read the side store %s: %s (keeping its previous entries)", self.side_store, e)
            return None

    def _snapshot(self, base: Mapping[str, RegistryList], overlay: Overlay | None) -> Registries:
        """The lists with the side store's entries on top, their dates and the withdrawals of consent."""
        kinds = {n: s.kind for n, s in self.specs.items()}
        if overlay is None:  # the side store could not be read: its previous effect stays (its opt-outs too)
            cur = self.current
            lists = {n: cur.lists.get(n, lst) for n, lst in base.items()}
            return Registries(lists, cur.consent_dates, kinds, cur.withdrawals, cur.countries)
        lists = dict(base)
        for name, added in overlay.members.items():
            lst = base.get(name)
            if lst is None or not isinstance(lst.members, FrozenBitMap64):
                continue  # a list with no version loaded stays missing: its absence blocks (registry_stale)
            extra = FrozenBitMap64(added)
            members = lst.members | extra
            tag = hashlib.sha256(f"{lst.meta.sha256}:{','.join(map(str, sorted(added)))}".encode()).hexdigest()
            # Another version: the audit's "lists consulted" says the side store's entries were part of it.
            lists[name] = RegistryList(replace(lst.meta, count=len(members), sha256=tag), members)
        dates: dict[str, Mapping[int, ConsentDate]] = {}
        withdrawals: dict[int, ConsentDate] = dict(overlay.withdrawals)
        for name, spec in self.specs.items():
            if spec.kind in _RELATIONSHIP:  # the day of each number's latest purchase or inquiry
                days: dict[int, ConsentDate] = dict(self._dated.get(name, {})) if name in base else {}
                for key, when in overlay.dates.get(name, {}).items():
                    had = days.get(key)
                    if had is None or later(when, had):
                        days[key] = when
                dates[name] = days
                continue
            if spec.kind is not ListKind.CONSENT:
                continue
            file = self._files.get(name) if name in base else None
            merged: dict[int, ConsentDate] = dict(file.dates) if file is not None else {}
            for key, when in overlay.dates.get(name, {}).items():
                had = merged.get(key)
                if had is None or later(when, had):
                    merged[key] = when
            dates[name] = merged
            for key, when in (file.withdrawals.items() if file is not None else ()):
                had = withdrawals.get(key)
                if had is None or later(when, had):
                    withdrawals[key] = when
        return Registries(lists, dates, kinds, withdrawals, _countries(self.specs))

    def refresh_side(self) -> None:
        """Apply the side store as it is now (after an entry was recorded): no list file is read again."""
        self.current = self._snapshot(self._base, self._overlay(self.current))
        self._notify(ReloadResult())

    def side_changed(self) -> bool:
        """Another process (the CLI) committed to the side store since it was last read."""
        if self.side_store is None:
            return False
        if self._store is None:
            return self.side_store.exists()
        try:
            with self._store_lock:
                return self._store.data_version() != self._store_version
        except sqlite3.Error:
            return False

    def _sync_file(self, name: str, consents: ConsentFile) -> None:
        """Copy a consent file's rows to the side store (its proof), in the same load."""
        if self.side_store is None:
            return
        try:
            with self._store_lock:
                store = self.side()
                assert store is not None
                added, revoked = store.sync_file(name, consents.rows)
        except sqlite3.Error as e:
            log.error("registry: %s: cannot copy the consent rows to the side store %s: %s", name, self.side_store, e)
            return
        if added or revoked:
            log.info("registry: %s: %d consent rows recorded in the side store, %d revocations", name, added, revoked)

    def _purge(self) -> None:
        """Once a day: drop the side store's entries whose proof is no longer owed (``consent_proof_years``)."""
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        if self._purged_on == today or self.side_store is None or (self._store is None and
                                                                    not self.side_store.exists()):
            return
        self._purged_on = today
        try:
            with self._store_lock:
                store = self.side()
                assert store is not None
                n = store.purge(today)
        except sqlite3.Error as e:
            log.error("registry: side store purge failed: %s", e)
            return
        if n:
            log.info("registry: %d side-store entries purged (%d years after their consent ended)", n,
                     self.proof_years)

    async def watch_side_store(self, interval: float = SIDE_POLL_SECONDS) -> None:
        """Until cancelled: re-read the side store when another process wrote to it, and purge it daily."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            try:
                if await loop.run_in_executor(None, self.side_changed):
                    async with self._lock:
                        overlay = await loop.run_in_executor(None, self._overlay, self.current)
                        self.current = self._snapshot(self._base, overlay)
                        self._notify(ReloadResult())
                    log.info("registry: side store changed: entries applied")
                await loop.run_in_executor(None, self._purge)
            except Exception:  # the watch must outlive one bad read
                log.exception("registry: side store watch failed")

    def start_watch(self) -> None:
        if self._watch is None and self.side_store is not None:
            self._watch = asyncio.get_running_loop().create_task(self.watch_side_store(), name="side-store-watch")

    async def close(self) -> None:
        await cancel(self._watch)
        self._watch = None
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def _hold(self, old: RegistryList | None, new: RegistryList, spec: ListSpec) -> Shrink | None:
        """The shrink guard: a new version that drops more than ``max_shrink`` is held back (None: take it).
        With no version in memory (a start), the reference is the count last in service (``_served``)."""
        refused = shrink(old, new, spec.max_shrink) if old is not None else \
            shrink_from_count(self._served.get(new.name), new, spec.max_shrink)
        if refused is None:
            self.held.pop(new.name, None)
        else:
            self.held[new.name] = (new, refused)
        return refused

    def _note_served(self) -> None:
        """Keep the counts of the guarded lists now in service, for the guard after a restart."""
        counts = {n: lst.meta.count for n, lst in self._base.items()
                  if n in self.specs and limit_of(self.specs[n].max_shrink, lst) is not None}
        if counts != self._served and self.in_service_path is not None:
            inservice.write(self.in_service_path, counts)
        self._served = counts

    def accept(self, name: str) -> ListMeta:
        """An operator's ``registry accept NAME``: the version held back by the shrink guard goes into service."""
        entry = self.held.pop(name, None)
        if entry is None:
            raise RegistryError(f"{name}: no version held back (nothing to accept)")
        lst, refused = entry
        log.warning("registry: %s: version %s accepted by the operator (%d of %d numbers dropped)", name,
                    refused.version, refused.dropped, refused.in_service)
        self._base[name] = lst
        self._note_served()
        self.current = self._snapshot(self._base, self._overlay(self.current))
        self.clear_failure(name)
        result = ReloadResult({name: lst.meta})
        self.last_result = result
        self._notify(result)
        return lst.meta

    def install(self, lst: RegistryList) -> None:
        """Swap in one list built elsewhere (URL poller, API); refused (RegistryError) when the shrink guard
        holds it back, the version in service kept."""
        spec = self.specs.get(lst.name)
        if spec is not None and (refused := self._hold(self._base.get(lst.name), lst, spec)) is not None:
            raise RegistryError(refused.message())
        self._base[lst.name] = lst
        self._note_served()
        self.current = self._snapshot(self._base, self._overlay(self.current))
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

