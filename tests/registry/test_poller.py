"""Registry poller: file:// and http(s) sources, SHA-256 checks, conditional GETs, atomic swap, failures kept out."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from gateway.numbers import Normaliser
from gateway.registry.holder import FailureOrigin, RegistryHolder
from gateway.registry.model import ListKind, ListSpec
from gateway.registry.poller import (
    Outcome,
    PollError,
    RegistryPoller,
    Validators,
    next_delay,
    parse_digest,
    sidecar_url,
)

V1 = "0612000001\n0612000002\n0612000003\n"
V2 = "0612000004\n0612000005\n"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def spec(url: str, **kw: object) -> ListSpec:
    return ListSpec(name="bloctel", kind=ListKind.OPPOSITION, path=kw.pop("path", None), url=url,  # type: ignore[arg-type]
                      **kw)  # type: ignore[arg-type]


def holder_for(s: ListSpec) -> RegistryHolder:
    return RegistryHolder({s.name: s}, Normaliser("FR", ()))


def members(holder: RegistryHolder) -> set[int]:
    lst = holder.current.get("bloctel")
    return set() if lst is None else {k for k in (33612000001, 33612000002, 33612000003, 33612000004,
                                                  33612000005) if k in lst}


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


# -- pure helpers ---------------------------------------------------------------------------------------

def test_parse_digest_reads_sha256sum_lines() -> None:
    d = sha("x")
    assert parse_digest(f"{d.upper()}  bloctel.csv\n", "s") == d
    with pytest.raises(PollError, match="not a SHA-256"):
        parse_digest("<html>not found</html>", "s")
    with pytest.raises(PollError):
        parse_digest("", "s")


def test_conditional_headers_and_sidecar() -> None:
    assert Validators().headers() == {}
    assert Validators('"abc"', "Tue, 24 Nov 2026 09:00:00 GMT").headers() == {
        "If-None-Match": '"abc"', "If-Modified-Since": "Tue, 24 Nov 2026 09:00:00 GMT"}
    assert sidecar_url("https://x/l.csv") == "https://x/l.csv.sha256"


def test_retry_backs_off_up_to_the_poll_interval() -> None:
    assert next_delay(600, 0) == 600
    assert [next_delay(600, n) for n in (1, 2, 3, 8)] == [5, 10, 20, 600]
    assert next_delay(0, 2) == 10  # fetch-once lists still retry until they succeed


# -- file:// ----------------------------------------------------------------------------------------------

async def test_file_list_is_verified_loaded_and_swapped(tmp_path: Path) -> None:
    src = tmp_path / "bloctel.txt"
    src.write_text(V1)
    (tmp_path / "bloctel.txt.sha256").write_text(f"{sha(V1)}  bloctel.txt\n")
    s = spec(src.as_uri())
    holder = holder_for(s)
    poller = RegistryPoller(holder, [s])
    await poller.start()
    try:
        assert members(holder) == {33612000001, 33612000002, 33612000003}
        lst = holder.current.get("bloctel")
        assert lst is not None and lst.meta.source == src.as_uri()
        assert await poller.poll_now() == {"bloctel": Outcome.UNCHANGED}

        # A new file whose sidecar was not updated yet: refused, the old list keeps serving.
        src.write_text(V2)
        os.utime(src, ns=(1, 1))
        assert await poller.poll_now() == {"bloctel": Outcome.FAILED}
        assert members(holder) == {33612000001, 33612000002, 33612000003}
        st = poller.status["bloctel"]
        assert st.failures == 1 and "does not match" in st.last_error

        (tmp_path / "bloctel.txt.sha256").write_text(sha(V2))
        assert await poller.poll_now() == {"bloctel": Outcome.UPDATED}
        assert members(holder) == {33612000004, 33612000005}
        assert st.consecutive_failures == 0 and st.updates == 2
    finally:
        await poller.close()


async def test_file_list_without_digest_loads_unverified_but_a_pinned_one_must_match(tmp_path: Path) -> None:
    src = tmp_path / "l.txt"
    src.write_text(V1)
    h = holder_for(s := spec(src.as_uri()))
    p = RegistryPoller(h, [s])
    assert await p.poll_now() == {"bloctel": Outcome.UPDATED}
    pinned = spec(src.as_uri(), sha256=sha(V2))
    h2 = holder_for(pinned)
    p2 = RegistryPoller(h2, [pinned])
    assert await p2.poll_now() == {"bloctel": Outcome.FAILED}
    assert h2.current.get("bloctel") is None
    await p.close()
    await p2.close()


async def test_a_corrupt_file_keeps_the_previous_list(tmp_path: Path) -> None:
    src = tmp_path / "l.txt"
    src.write_text(V1)
    p = RegistryPoller(h := holder_for(s := spec(src.as_uri())), [s])
    assert await p.poll_now() == {"bloctel": Outcome.UPDATED}
    src.write_text("this is not\na list of\nphone numbers\n")
    assert await p.poll_now() == {"bloctel": Outcome.FAILED}
    assert "not numbers" in p.status["bloctel"].last_error
    assert members(h) == {33612000001, 33612000002, 33612000003}
    # Shown like a failed reload (metrics, /healthz, the page); the next good poll clears it.
    assert h.failures["bloctel"].origin is FailureOrigin.POLL and "not numbers" in h.failures["bloctel"].error
    src.write_text(V2)
    assert await p.poll_now() == {"bloctel": Outcome.UPDATED}
    assert h.failures == {}
    await p.close()


async def test_an_unchanged_poll_after_a_failure_clears_it(tmp_path: Path) -> None:
    src = tmp_path / "l.txt"
    src.write_text(V1)
    p = RegistryPoller(h := holder_for(s := spec(src.as_uri())), [s])
    assert await p.poll_now() == {"bloctel": Outcome.UPDATED}
    src.rename(tmp_path / "away.txt")
    assert await p.poll_now() == {"bloctel": Outcome.FAILED}
    assert "bloctel" in h.failures
    (tmp_path / "away.txt").rename(src)
    assert await p.poll_now() == {"bloctel": Outcome.UNCHANGED}
    assert h.failures == {}
    await p.close()


async def test_missing_file_is_a_counted_failure(tmp_path: Path) -> None:
    s = spec((tmp_path / "nope.txt").as_uri())
    p = RegistryPoller(holder_for(s), [s])

    class Rec:
        def __init__(self) -> None:
            self.seen: list[tuple[str, str]] = []

        def registry_poll(self, name: str, outcome: str) -> None:
            self.seen.append((name, outcome))

    p.metrics = rec = Rec()
    assert await p.poll_now() == {"bloctel": Outcome.FAILED}
    assert rec.seen == [("bloctel", "failed")]
    assert "No such file" in p.status["bloctel"].last_error
    await p.close()


# -- http -------------------------------------------------------------------------------------------------

@dataclass
class Origin:
    """A registry publisher: serves the list with an ETag and its .sha256 sidecar."""

    body: str = V1
    sidecar: str | None = None
    status: int = 200
    requests: list[dict[str, str]] = field(default_factory=list)
    not_modified: int = 0
    url: str = ""

    def etag(self) -> str:
        return f'"{sha(self.body)[:16]}"'

    async def list_(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        if self.status != 200:
            return web.Response(status=self.status)
        if request.headers.get("If-None-Match") == self.etag():
            self.not_modified += 1
            return web.Response(status=304)
        return web.Response(body=self.body.encode(), headers={"ETag": self.etag()})

    async def digest(self, request: web.Request) -> web.Response:
        if self.sidecar is None:
            return web.Response(status=404)
        return web.Response(text=self.sidecar)


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    o = Origin()
    o.sidecar = f"{sha(o.body)}  bloctel.txt\n"
    app = web.Application()
    app.router.add_get("/lists/bloctel.txt", o.list_)
    app.router.add_get("/lists/bloctel.txt.sha256", o.digest)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    o.url = f"http://127.0.0.1:{port}/lists/bloctel.txt"
    yield o
    await runner.cleanup()


async def test_http_list_uses_conditional_gets_and_swaps_on_change(origin: Origin, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "bloctel.txt"
    s = spec(origin.url, path=cache, poll_seconds=0.05)
    holder = holder_for(s)
    poller = RegistryPoller(holder, [s])
    await poller.start()
    try:
        assert members(holder) == {33612000001, 33612000002, 33612000003}
        assert cache.read_text() == V1  # the verified copy serves restarts
        await eventually(lambda: origin.not_modified >= 2)
        assert origin.requests[-1]["If-None-Match"] == origin.etag()
        origin.body, origin.sidecar = V2, sha(V2)
        await eventually(lambda: members(holder) == {33612000004, 33612000005})
        assert cache.read_text() == V2
        assert not [p for p in cache.parent.iterdir() if p.name != "bloctel.txt"]  # no temporary files left
    finally:
        await poller.close()


async def test_http_failures_keep_the_list_and_recover(origin: Origin) -> None:
    s = spec(origin.url)
    holder = holder_for(s)
    poller = RegistryPoller(holder, [s])
    await poller.start()
    try:
        origin.status = 503
        assert await poller.poll_now() == {"bloctel": Outcome.FAILED}
        assert "HTTP 503" in poller.status["bloctel"].last_error
        origin.status = 200
        origin.body = V2  # the sidecar still describes V1: a half-published update
        assert await poller.poll_now() == {"bloctel": Outcome.FAILED}
        assert members(holder) == {33612000001, 33612000002, 33612000003}
        origin.sidecar = None
        assert await poller.poll_now() == {"bloctel": Outcome.FAILED}
        assert "refusing an unverified download" in poller.status["bloctel"].last_error
        origin.sidecar = sha(V2)
        assert await poller.poll_now() == {"bloctel": Outcome.UPDATED}
        assert members(holder) == {33612000004, 33612000005}
        assert poller.status["bloctel"].failures == 3
    finally:
        await poller.close()


async def test_pinned_digest_needs_no_sidecar(origin: Origin) -> None:
    origin.sidecar = None
    s = spec(origin.url, sha256=sha(V1))
    poller = RegistryPoller(holder := holder_for(s), [s])
    await poller.start()
    try:
        assert members(holder) == {33612000001, 33612000002, 33612000003}
    finally:
        await poller.close()


async def test_install_waits_for_a_running_reload(origin: Origin, tmp_path: Path) -> None:
    """A reload of the local lists copies the current set in a thread: the poller must not be undone by it."""
    local = tmp_path / "dnc.txt"
    local.write_text("0612000200\n")
    s = spec(origin.url)
    other = ListSpec(name="company-dnc", kind=ListKind.INTERNAL_DNC, path=local)
    holder = RegistryHolder({"bloctel": s, "company-dnc": other}, Normaliser("FR", ()))
    poller = RegistryPoller(holder, [s, other])
    assert list(poller.specs) == ["bloctel"]
    await asyncio.gather(holder.reload(["company-dnc"]), poller.poll_now())
    assert set(holder.current.lists) == {"bloctel", "company-dnc"}
    await poller.close()


async def test_reconfigure_keeps_unchanged_lists_and_takes_new_ones(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(V1)
    b.write_text(V2)
    s = spec(a.as_uri(), poll_seconds=3600)
    holder = holder_for(s)
    poller = RegistryPoller(holder, [s])
    await poller.start()
    try:
        await poller.reconfigure([spec(a.as_uri(), poll_seconds=60)])  # only the interval changed
        assert await poller.poll_now() == {"bloctel": Outcome.UNCHANGED}
        assert poller.status["bloctel"].updates == 1
        await poller.reconfigure([spec(b.as_uri(), poll_seconds=60)])  # another source: fetched again
        await eventually(lambda: members(holder) == {33612000004, 33612000005})
        await poller.reconfigure([])
        assert poller.status == {} and poller.specs == {}
    finally:
        await poller.close()
