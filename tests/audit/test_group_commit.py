"""Issue 16 #1: group commit without a fixed wait (the leader/follower scheme), driven step by step.

Every commit of :class:`GatedLog` first reports the group it took and then waits for the test's go-ahead, as if
its fsync were slow: the tests hold a commit "in its sync", queue records meanwhile and see how they are
grouped. No timer and no timed assertion: a wait that should not happen would hang the test (and fail it by
its ``wait_for``), it could not pass by luck.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.audit import AuditLog, AuditRecord, AuditUnavailable
from gateway.audit import writer as writer_module
from gateway.config import AuditSection
from tests.audit.helpers import ids, rec, verification

STEP = 10.0  # seconds before a step that never comes fails the test (never reached when the code is right)


class GatedLog(AuditLog):
    """An AuditLog whose commits are held, one at a time, until the test lets each one go."""

    def __init__(self, path: Path, config: AuditSection) -> None:
        super().__init__(path, config)
        self.taken: queue.Queue[list[str]] = queue.Queue()  # decision ids of each group, as the writer takes it
        self.go = threading.Semaphore(0)
        self.enqueued = asyncio.Event()  # set by every append (on the loop's thread)

    def _commit(self, conn: sqlite3.Connection, group: Any) -> bool:
        self.taken.put([r.decision_id for r in group.records])
        if not self.go.acquire(timeout=STEP):
            raise AssertionError("the test never let this commit go")
        return super()._commit(conn, group)

    async def next_group(self) -> list[str]:
        """The next group the writer takes (it is then held: ``go.release()`` lets it commit)."""
        return await asyncio.wait_for(asyncio.to_thread(self.taken.get, timeout=STEP), STEP + 1)

    def _enqueue(self, record: AuditRecord, future: asyncio.Future[None] | None) -> None:
        super()._enqueue(record, future)
        self.enqueued.set()

    async def queued(self, depth: int) -> None:
        """Until ``depth`` records wait in the queue (the appending tasks have run up to their enqueue)."""
        while self.stats()["queue_depth"] < depth:
            self.enqueued.clear()
            await self.enqueued.wait()


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[GatedLog]:
    log = GatedLog(tmp_path / "a.db", AuditSection())  # the shipped default: no fixed wait
    await log.start()
    yield log
    for _ in range(10):  # whatever a failed test left held
        log.go.release()
    await log.close()


@pytest.fixture
async def wakeups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The writer's hand-offs to the event loop: one entry per ``call_soon_threadsafe`` from ``AuditLog._settle``
    (the loop's other thread-safe calls, such as ``asyncio.to_thread`` completing, are left out)."""
    loop = asyncio.get_running_loop()
    real = loop.call_soon_threadsafe
    seen: list[str] = []

    def counting(callback: Callable[..., object], *args: Any, **kw: Any) -> Any:
        name = getattr(callback, "__qualname__", "")
        if name.startswith("AuditLog._settle"):
            seen.append(name)
        return real(callback, *args, **kw)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    return seen


def test_no_fixed_wait_by_default() -> None:
    assert AuditSection().group_commit_ms == 0.0


async def test_first_record_of_a_quiet_period_commits_at_once_and_followers_form_the_next_group(
        gated: GatedLog, wakeups: list[str]) -> None:
    first = asyncio.create_task(gated.append(rec(1), durable=True))
    # The writer takes the lone record straight away: nothing else is queued and nothing makes it wait.
    assert await gated.next_group() == ["dec000001"]
    # While that commit is "syncing", three more calls come in: they queue, nobody commits them yet.
    followers = [asyncio.create_task(gated.append(rec(i), durable=i != 3)) for i in (2, 3, 4)]
    await gated.queued(3)
    assert not first.done(), "a durable append returned before its commit"
    assert not any(t.done() for t in (followers[0], followers[2]))
    gated.go.release()
    await asyncio.wait_for(first, STEP)
    assert ids(gated.path) == ["dec000001"]
    # As soon as the first commit is done, the three of them go as one group.
    assert await gated.next_group() == ["dec000002", "dec000003", "dec000004"]
    assert not followers[0].done() and not followers[2].done()
    gated.go.release()
    await asyncio.wait_for(asyncio.gather(*followers), STEP)
    assert ids(gated.path) == [f"dec{i:06d}" for i in (1, 2, 3, 4)]
    # Two groups, two commits, and one wake-up on the loop per group (not one per record).
    assert gated.stats()["commits"] == 2 and gated.stats()["records_written"] == 4
    assert len(wakeups) == 2
    assert verification(gated.path).ok


async def test_a_quiet_period_again_commits_the_next_record_alone(gated: GatedLog) -> None:
    for i in range(3):
        task = asyncio.create_task(gated.append(rec(i), durable=True))
        assert await gated.next_group() == [f"dec{i:06d}"]
        gated.go.release()
        await asyncio.wait_for(task, STEP)
    assert gated.stats()["commits"] == 3


async def test_groups_are_cut_at_max_batch(gated: GatedLog, wakeups: list[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "MAX_BATCH", 3)
    first = asyncio.create_task(gated.append(rec(0), durable=True))
    assert await gated.next_group() == ["dec000000"]
    rest = [asyncio.create_task(gated.append(rec(i), durable=True)) for i in range(1, 8)]
    await gated.queued(7)
    got = []
    for _ in range(3):
        gated.go.release()
        got.append(await gated.next_group())
    gated.go.release()
    await asyncio.wait_for(asyncio.gather(first, *rest), STEP)
    assert got == [["dec000001", "dec000002", "dec000003"], ["dec000004", "dec000005", "dec000006"], ["dec000007"]]
    assert len(wakeups) == 4
    assert ids(gated.path) == [f"dec{i:06d}" for i in range(8)] and verification(gated.path).ok


async def test_a_full_group_does_not_wait_for_group_commit_ms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the optional wait on (a minute here), a group that reaches MAX_BATCH records is committed at once."""
    monkeypatch.setattr(writer_module, "MAX_BATCH", 3)
    log = GatedLog(tmp_path / "a.db", AuditSection(group_commit_ms=60_000.0))
    await log.start()
    try:
        tasks = [asyncio.create_task(log.append(rec(i), durable=True)) for i in range(3)]
        assert await log.next_group() == ["dec000000", "dec000001", "dec000002"]
        log.go.release()
        await asyncio.wait_for(asyncio.gather(*tasks), STEP)
    finally:
        await log.close()


async def test_a_malformed_record_fails_alone_in_its_group(gated: GatedLog) -> None:
    first = asyncio.create_task(gated.append(rec(0), durable=True))
    assert await gated.next_group() == ["dec000000"]
    bad = rec(2)._replace(at="not a time")  # float() of it fails when the row is built
    tasks = [asyncio.create_task(gated.append(r, durable=True)) for r in (rec(1), bad, rec(3))]
    await gated.queued(3)
    gated.go.release()
    assert await gated.next_group() == ["dec000001", "dec000002", "dec000003"]
    gated.go.release()
    results = await asyncio.wait_for(asyncio.gather(first, *tasks, return_exceptions=True), STEP)
    assert results[:2] == [None, None] and results[3] is None
    assert isinstance(results[2], AuditUnavailable) and "cannot be stored" in str(results[2])
    assert ids(gated.path) == ["dec000000", "dec000001", "dec000003"] and verification(gated.path).ok


async def test_a_cancelled_waiter_leaves_its_group_alone(gated: GatedLog) -> None:
    """Each caller waits on a future of its own: a hung-up call cancels its wait, not its neighbours'."""
    first = asyncio.create_task(gated.append(rec(0), durable=True))
    assert await gated.next_group() == ["dec000000"]
    gone, stays = (asyncio.create_task(gated.append(rec(i), durable=True)) for i in (1, 2))
    await gated.queued(2)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    gated.go.release()
    assert await gated.next_group() == ["dec000001", "dec000002"]
    gated.go.release()
    await asyncio.wait_for(asyncio.gather(first, stays), STEP)
    # The record was queued before the caller gave up: it is in the chain all the same.
    assert ids(gated.path) == ["dec000000", "dec000001", "dec000002"]


async def test_close_writes_what_queued_behind_a_commit(gated: GatedLog) -> None:
    first = asyncio.create_task(gated.append(rec(0), durable=True))
    assert await gated.next_group() == ["dec000000"]
    for i in range(1, 4):
        gated.append_nowait(rec(i))
    closing = asyncio.create_task(gated.close())
    gated.go.release()
    assert await gated.next_group() == ["dec000001", "dec000002", "dec000003"]
    gated.go.release()
    await asyncio.wait_for(asyncio.gather(first, closing), STEP)
    assert ids(gated.path) == [f"dec{i:06d}" for i in range(4)]


async def test_a_group_larger_than_one_insert_statement_keeps_the_chain(gated: GatedLog) -> None:
    """A group goes in multi-row INSERTs of INSERT_ROWS rows: 2.5 statements' worth, in order, chained."""
    n = writer_module.INSERT_ROWS * 5 // 2
    first = asyncio.create_task(gated.append(rec(0), durable=True))
    assert await gated.next_group() == ["dec000000"]
    for i in range(1, n):
        gated.append_nowait(rec(i))
    last = asyncio.create_task(gated.append(rec(n), durable=True))
    await gated.queued(n)
    gated.go.release()
    assert len(await gated.next_group()) == n
    gated.go.release()
    await asyncio.wait_for(asyncio.gather(first, last), STEP)
    assert ids(gated.path) == [f"dec{i:06d}" for i in range(n + 1)]
    v = verification(gated.path)
    assert v.ok and v.last_seq == n + 1, v.message


async def test_append_then_calls_back_from_the_groups_wake_up_once_committed(gated: GatedLog,
                                                                            wakeups: list[str]) -> None:
    """The FastAGI path: no future, the group's one wake-up on the loop calls each record's callback."""
    told: list[tuple[str, AuditUnavailable | None]] = []

    def then(name: str) -> Callable[[AuditUnavailable | None], None]:
        def done(e: AuditUnavailable | None) -> None:
            told.append((name, e))
            if name == "rude":
                raise RuntimeError("a caller's bug")
        return done

    gated.append_then(rec(0), then("first"))
    assert await gated.next_group() == ["dec000000"]
    bad = rec(3)._replace(at="not a time")  # fails alone when its row is built
    for name, r in (("rude", rec(1)), ("polite", rec(2)), ("malformed", bad)):
        gated.append_then(r, then(name))
    gated.append_nowait(rec(4))
    await gated.queued(4)
    assert told == [], "called back before its commit"
    gated.go.release()
    assert await gated.next_group() == ["dec000001", "dec000002", "dec000003", "dec000004"]
    assert [name for name, _ in told] == ["first"] and told[0][1] is None
    assert ids(gated.path) == ["dec000000"]  # committed before its callback ran
    gated.go.release()
    async with asyncio.timeout(STEP):
        while len(told) < 4:  # noqa: ASYNC110 (the wake-up is the loop's next callback; bounded)
            await asyncio.sleep(0)
    # The malformed record is told first (before the commit); the rude callback's exception did not keep its
    # neighbour from its answer.
    said = dict(told)
    assert [name for name, _ in told] == ["first", "malformed", "rude", "polite"]
    assert said["rude"] is None and said["polite"] is None
    assert isinstance(said["malformed"], AuditUnavailable) and "cannot be stored" in str(said["malformed"])
    assert ids(gated.path) == ["dec000000", "dec000001", "dec000002", "dec000004"]
    assert len(wakeups) == 3  # one per group (callbacks and all), and the malformed record's own


async def test_append_then_refused_at_once_is_never_called_back(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.db", AuditSection(max_queue=1))
    told: list[AuditUnavailable | None] = []
    with pytest.raises(AuditUnavailable, match="not started"):
        log.append_then(rec(0), told.append)
    await log.start()
    await log.close()
    with pytest.raises(AuditUnavailable):
        log.append_then(rec(1), told.append)
    await asyncio.sleep(0)
    assert told == []
