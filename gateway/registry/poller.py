"""Registries from a URL or a file, verified by SHA-256, polled, swapped atomically.

For every ``[lists.X]`` with ``url = "https://…" | "file:///…"`` the poller
fetches the file (conditional GET: ETag / Last-Modified; for ``file://`` the
size and modification time), streams it to a temporary file while hashing it,
checks the digest against ``sha256`` (config) or the ``URL.sha256`` sidecar,
loads it off the event loop and swaps it in whole with ``holder.install``.
Anything wrong (network, 5xx, digest mismatch, too many bad lines) keeps the
list that was serving: it is logged, counted, and retried with backoff.

When the list also has a ``path``, the verified file is moved there, so that a
restart (or a SIGHUP reload) serves the last good copy even if the URL is down.
A plain ``http``/``https`` list must be verifiable: without ``sha256`` in the
config nor a sidecar it is refused. A ``file://`` list without either is loaded
unverified (the operator controls the file system), with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp

from gateway.redact import redact_text, redact_url
from gateway.registry.holder import FailureOrigin, RegistryHolder
from gateway.registry.loaders import load_list
from gateway.registry.model import ListSpec, RegistryError, RegistryList

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class PollError(Exception):
    """A fetch that cannot be trusted; the previous list stays."""


class Outcome(enum.StrEnum):
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Validators:
    """What the source said about the version we hold, for the next conditional fetch."""

    etag: str = ""
    last_modified: str = ""

    def headers(self) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.etag:
            h["If-None-Match"] = self.etag
        if self.last_modified:
            h["If-Modified-Since"] = self.last_modified
        return h


@dataclass(slots=True)
class PollStatus:
    """Per list, for the page, /healthz and the logs."""

    name: str
    url: str
    version: str = ""
    last_ok: float | None = None  # epoch seconds of the last successful check (updated or unchanged)
    last_update: float | None = None
    last_error: str = ""
    consecutive_failures: int = 0
    failures: int = 0
    updates: int = 0
    validators: Validators = field(default_factory=Validators)
    file_sha256: str = ""


def sidecar_url(url: str) -> str:
    return url + ".sha256"


def parse_digest(text: str, where: str) -> str:
    """The first word of a ``sha256sum``-style line (``HEX  name``), lower-cased."""
    word = text.strip().split(maxsplit=1)[0] if text.strip() else ""
    if not _HEX64.match(word):
        raise PollError(f"{where}: not a SHA-256 digest: {text[:80]!r}")
    return word.lower()


def next_delay(poll_seconds: float, consecutive_failures: int, *, base: float = 5.0) -> float:
    """After a failure retry sooner than the poll interval, backing off: 5, 10, 20… s, capped by the interval."""
    if consecutive_failures == 0:
        return poll_seconds
    backoff: float = base * 2 ** min(consecutive_failures - 1, 10)
    return min(backoff, poll_seconds) if poll_seconds > 0 else backoff


def file_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise PollError(f"{url}: file:// URLs must be local (file:///path)")
    return Path(unquote(parts.path))


def _copy_and_hash(src: Path, dst: Path, max_bytes: int) -> str:
    h = hashlib.sha256()
    size = 0
    with src.open("rb") as fi, dst.open("wb") as fo:
        while chunk := fi.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise PollError(f"{src}: larger than {max_bytes} bytes")
            h.update(chunk)
            fo.write(chunk)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class _Fetched:
    tmp: Path | None  # None: unchanged since the last fetch
    sha256: str = ""
    validators: Validators = field(default_factory=Validators)


class RegistryPoller:
    """Keeps every URL list of the config fresh in ``holder``; ``await start()`` then ``await close()``."""

    def __init__(self, holder: RegistryHolder, specs: Iterable[ListSpec], *, work_dir: Path | None = None,
                 first_wait: float = 30.0, max_bytes: int = 8 << 30, connect_timeout: float = 10.0,
                 read_timeout: float = 60.0, retry_base: float = 5.0) -> None:
        self.holder = holder
        self.specs = {s.name: s for s in specs if s.url}
        self.metrics: Any = None  # an object with ``registry_poll(name, outcome)``; set by the app
        self.status: dict[str, PollStatus] = {n: PollStatus(n, redact_url(s.url)) for n, s in self.specs.items()}
        self._work_dir = work_dir
        self._own_work_dir: Path | None = None
        self._first_wait = first_wait
        self._max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._retry_base = retry_base
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._locks = {n: asyncio.Lock() for n in self.specs}

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Fetch every list once (waiting up to ``first_wait`` s in all), then keep polling in the background."""
        if not self.specs:
            return
        if self._work_dir is None:
            self._own_work_dir = self._work_dir = Path(tempfile.mkdtemp(prefix="dncgw-lists-"))
        firsts: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()
        for spec in self.specs.values():
            first: asyncio.Future[None] = loop.create_future()
            firsts.append(first)
            self._tasks.append(loop.create_task(self._loop(spec, first), name=f"poll-{spec.name}"))
        _done, pending = await asyncio.wait(firsts, timeout=self._first_wait)
        if pending:
            log.warning("registry poller: %d list(s) not fetched within %.0fs; still trying in the background",
                        len(pending), self._first_wait)

    async def reconfigure(self, specs: Iterable[ListSpec]) -> None:
        """Take a reloaded config's lists (SIGHUP): restart the polling loops, keeping what is known of
        lists whose URL did not change (so an unchanged file is not downloaded and loaded again)."""
        new = {s.name: s for s in specs if s.url}
        await self._stop_loops()
        for name, spec in new.items():
            old = self.specs.get(name)
            # Only the polling interval changed: the list in memory is still the right one.
            same = old is not None and replace(old, poll_seconds=0) == replace(spec, poll_seconds=0)
            if not same or name not in self.status:
                self.status[name] = PollStatus(name, redact_url(spec.url))
            self._locks.setdefault(name, asyncio.Lock())
        for name in set(self.status) - set(new):
            del self.status[name]
        self.specs = new
        if self._work_dir is None and new:
            self._own_work_dir = self._work_dir = Path(tempfile.mkdtemp(prefix="dncgw-lists-"))
        loop = asyncio.get_running_loop()
        for spec in new.values():
            self._tasks.append(loop.create_task(self._loop(spec, loop.create_future()), name=f"poll-{spec.name}"))

    async def _stop_loops(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()

    async def close(self) -> None:
        await self._stop_loops()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._own_work_dir is not None:
            shutil.rmtree(self._own_work_dir, ignore_errors=True)
            self._own_work_dir = self._work_dir = None

    async def poll_now(self, names: Iterable[str] | None = None) -> dict[str, Outcome]:
        """Check the given lists (all by default) at once: for SIGHUP and ``POST /api/registry/reload``."""
        chosen = [n for n in (names if names is not None else self.specs) if n in self.specs]
        outcomes = await asyncio.gather(*(self.poll_once(self.specs[n]) for n in chosen))
        return dict(zip(chosen, outcomes, strict=True))

    async def _loop(self, spec: ListSpec, first: asyncio.Future[None]) -> None:
        st = self.status[spec.name]
        while True:
            await self.poll_once(spec)
            if not first.done():
                first.set_result(None)
            if spec.poll_seconds <= 0 and st.consecutive_failures == 0:
                return  # fetched once, no polling asked for
            await asyncio.sleep(next_delay(spec.poll_seconds, st.consecutive_failures, base=self._retry_base))

    # -- one poll -----------------------------------------------------------------------------------

    async def poll_once(self, spec: ListSpec) -> Outcome:
        """Fetch, verify, load and install one list; never raises (except cancellation)."""
        st = self.status[spec.name]
        async with self._locks[spec.name]:
            fetched: _Fetched | None = None
            try:
                try:
                    # One deadline for the whole download: a server that trickles a byte at a time never trips
                    # the per-read timeout, and a SIGHUP reload waits for this poll.
                    async with asyncio.timeout(spec.fetch_timeout):
                        fetched = await self._fetch(spec, st)
                except TimeoutError:
                    raise PollError(f"{spec.url}: not downloaded within fetch_timeout ({spec.fetch_timeout:g} s)"
                                    ) from None
                if fetched.tmp is None or fetched.sha256 == st.file_sha256:
                    outcome = Outcome.UNCHANGED
                else:
                    lst = await asyncio.get_running_loop().run_in_executor(None, self._load, spec, fetched.tmp)
                    await self._install(lst)
                    if spec.path is not None:
                        # Keep the verified copy for restarts: same directory, so the rename is atomic.
                        await asyncio.get_running_loop().run_in_executor(None, self._keep, fetched.tmp, spec.path)
                    st.version, st.file_sha256, st.last_update = lst.meta.version, fetched.sha256, time.time()
                    st.updates += 1
                    outcome = Outcome.UPDATED
                    log.info("registry: %s updated from %s: %d numbers, version %s", spec.name, redact_url(spec.url),
                             lst.meta.count, lst.meta.version)
                st.validators = fetched.validators
                st.last_ok, st.last_error, st.consecutive_failures = time.time(), "", 0
                if outcome is Outcome.UNCHANGED:  # an update cleared any failure already (holder.install)
                    async with self.holder._lock:
                        self.holder.clear_failure(spec.name, FailureOrigin.POLL)
            except asyncio.CancelledError:
                raise
            except (PollError, RegistryError, OSError, aiohttp.ClientError, TimeoutError) as e:
                outcome = Outcome.FAILED
                st.failures += 1
                st.consecutive_failures += 1
                st.last_error = redact_text(str(e) or type(e).__name__)  # shown on /healthz: no URL secret
                kept = f"keeping version {st.version}" if st.version else (
                    "keeping the local copy" if spec.name in self.holder.current.lists else "the list is not loaded")
                log.error("registry: %s: fetch from %s failed (%s): %s", spec.name, redact_url(spec.url), kept,
                          st.last_error)
                # Shown like a failed reload (/metrics, /healthz, the page): the list in service is the old one.
                async with self.holder._lock:
                    self.holder.poll_failed(spec.name, st.last_error)
            finally:
                if fetched is not None and fetched.tmp is not None:
                    with contextlib.suppress(OSError):
                        fetched.tmp.unlink()
        if self.metrics is not None:
            try:
                self.metrics.registry_poll(spec.name, str(outcome))
            except Exception:  # metrics must never stop the poller
                log.exception("metrics.registry_poll failed")
        return outcome

    def _load(self, spec: ListSpec, tmp: Path) -> RegistryList:
        lst, report = load_list(tmp, name=spec.name, kind=spec.kind, normaliser=self.holder.normaliser,
                                fmt=spec.format, as_of=spec.as_of, max_age_days=spec.max_age_days,
                                max_bad_share=spec.max_bad_share,
                                min_bad_lines=spec.min_bad_lines)
        if report.bad_count:
            log.warning("registry: %s: %s", spec.name, report.summary().replace(str(tmp), redact_url(spec.url)))
        return lst.with_meta(source=redact_url(spec.url))

    async def _install(self, lst: RegistryList) -> None:
        # The holder's reload copies the current lists in a worker thread and swaps them back: installing
        # while it runs would be undone, so take its lock.
        async with self.holder._lock:
            self.holder.install(lst)

    @staticmethod
    def _keep(tmp: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staged = dest.with_name(f".{dest.name}.new")
        shutil.copyfile(tmp, staged)
        os.replace(staged, dest)

    def _tmp_for(self, spec: ListSpec) -> Path:
        folder = spec.path.parent if spec.path is not None else self._work_dir
        if folder is None:
            self._own_work_dir = self._work_dir = folder = Path(tempfile.mkdtemp(prefix="dncgw-lists-"))
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".part", dir=folder)
        os.close(fd)
        return Path(name)

    async def _fetch(self, spec: ListSpec, st: PollStatus) -> _Fetched:
        scheme = urlsplit(spec.url).scheme.lower()
        if scheme == "file":
            return await self._fetch_file(spec, st)
        if scheme in ("http", "https"):
            return await self._fetch_http(spec, st)
        raise PollError(f"{spec.url}: unsupported URL scheme {scheme!r} (http, https or file)")

    async def _fetch_file(self, spec: ListSpec, st: PollStatus) -> _Fetched:
        return await asyncio.get_running_loop().run_in_executor(None, self._fetch_file_sync, spec, st)

    def _fetch_file_sync(self, spec: ListSpec, st: PollStatus) -> _Fetched:
        src = file_path(spec.url)
        try:
            info = src.stat()
        except OSError as e:
            raise PollError(f"{src}: {e.strerror or e}") from None
        validators = Validators(etag=f"{info.st_mtime_ns}-{info.st_size}")
        if validators == st.validators and st.file_sha256:
            return _Fetched(None, st.file_sha256, validators)
        tmp = self._tmp_for(spec)
        try:
            digest = _copy_and_hash(src, tmp, self._max_bytes)
            expected = spec.sha256.lower()
            if not expected:
                side = Path(str(src) + ".sha256")
                if side.is_file():
                    expected = parse_digest(side.read_text(errors="replace"), str(side))
                elif not st.file_sha256:
                    log.warning("registry: %s: %s has no sha256 in the config nor a .sha256 file: loaded unverified",
                                spec.name, src)
            if expected and digest != expected:
                raise PollError(f"{src}: SHA-256 {digest} does not match the expected {expected}")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return _Fetched(tmp, digest, validators)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:  # poll_now() may run before start() (a one-off fetch)
            self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)
        return self._session

    async def _fetch_http(self, spec: ListSpec, st: PollStatus) -> _Fetched:
        headers = st.validators.headers() if st.file_sha256 else {}
        async with self._http().get(spec.url, headers=headers) as resp:
            if resp.status == 304:
                return _Fetched(None, st.file_sha256, st.validators)
            if resp.status != 200:
                raise PollError(f"{spec.url}: HTTP {resp.status} {resp.reason or ''}".rstrip())
            validators = Validators(resp.headers.get("ETag", ""), resp.headers.get("Last-Modified", ""))
            tmp = self._tmp_for(spec)
            try:
                h = hashlib.sha256()
                size = 0
                with tmp.open("wb") as fo:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        size += len(chunk)
                        if size > self._max_bytes:
                            raise PollError(f"{spec.url}: larger than {self._max_bytes} bytes")
                        h.update(chunk)
                        fo.write(chunk)
                if resp.content_length is not None and size != resp.content_length:
                    raise PollError(f"{spec.url}: truncated ({size} of {resp.content_length} bytes)")
                digest = h.hexdigest()
                expected = spec.sha256.lower() or await self._sidecar(spec.url)
                if digest != expected:
                    raise PollError(f"{spec.url}: SHA-256 {digest} does not match the expected {expected}")
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return _Fetched(tmp, digest, validators)

    async def _sidecar(self, url: str) -> str:
        side = sidecar_url(url)
        async with self._http().get(side) as resp:
            if resp.status == 404:
                raise PollError(f"{url}: no sha256 in the config and no {side}: refusing an unverified download")
            if resp.status != 200:
                raise PollError(f"{side}: HTTP {resp.status}")
            return parse_digest((await resp.content.read(4096)).decode("utf-8", "replace"), side)
