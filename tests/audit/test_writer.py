"""The audit log on a real SQLite file: group commit, durability, queries, disk full, retention."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.audit import (
    AuditLog,
    AuditReader,
    AuditRecord,
    AuditUnavailable,
    open_writer,
    purge_chunk,
)
from gateway.config import AuditSection, Config
from gateway.service import Gateway
from tests.audit.helpers import T0, chain_rows, db, ids, rec, started, verification
from tests.conftest import FIXED_NOW


@pytest.fixture
async def audit(tmp_path: Path) -> AsyncIterator[AuditLog]:
    log = await started(tmp_path / "audit.db", group_commit_ms=1.0)
    yield log
    await log.close()


# -- appends and group commit ---------------------------------------------------------------------

async def test_concurrent_appends_durable_and_not_are_all_written_in_groups(audit: AuditLog) -> None:
    n = 3000
    await asyncio.wait_for(asyncio.gather(*(audit.append(rec(i), durable=i % 3 != 0) for i in range(n))), 20)
    await audit.append(rec(n), durable=True)  # the last group holds every earlier one (FIFO)
    stats = audit.stats()
    assert stats["records_written"] == n + 1
    assert stats["commits"] < n / 10, "appends were not grouped"
    assert stats["queue_depth"] == 0
    assert ids(audit.path) == [f"dec{i:06d}" for i in range(n + 1)]
    v = audit.verify()
    assert v.ok and v.records == n + 1 and (v.first_seq, v.last_seq) == (1, n + 1), v.message


async def test_two_writers_on_one_file_share_one_chain(tmp_path: Path) -> None:
    a, b = await started(tmp_path / "a.db"), await started(tmp_path / "a.db")
    try:
        await asyncio.wait_for(asyncio.gather(*(log.append(rec(i), durable=i % 2 == 0)
                                                for i in range(400) for log in [(a, b)[i % 2]])), 20)
    finally:
        await a.close()
        await b.close()
    assert sorted(ids(tmp_path / "a.db")) == [f"dec{i:06d}" for i in range(400)]
    assert verification(tmp_path / "a.db").ok


async def test_a_writer_chains_from_the_head_another_writer_moved(tmp_path: Path) -> None:
    """Each commit moves the head only if it is still the one this writer left (compare and set); when another
    writer on the file moved it, the group is chained again from the head read under the write lock."""
    a, b = await started(tmp_path / "a.db"), await started(tmp_path / "a.db")
    try:
        for i in range(6):  # a, b, a, b...: every commit of each finds the head moved by the other
            await (a, b)[i % 2].append(rec(i), durable=True)
        await a.append(rec(6), durable=True)
        await a.append(rec(7), durable=True)  # the head is a's own: the compare-and-set path
    finally:
        await a.close()
        await b.close()
    assert ids(tmp_path / "a.db") == [f"dec{i:06d}" for i in range(8)]
    v = verification(tmp_path / "a.db")
    assert v.ok and v.records == 8, v.message


async def test_durable_append_is_committed_when_it_returns(audit: AuditLog) -> None:
    for i in range(5):
        await audit.append(rec(i), durable=True)
        # A separate connection (another process would see the same) finds it at once.
        assert ids(audit.path)[-1] == f"dec{i:06d}"


async def test_non_durable_append_returns_at_once_and_rides_the_next_group(tmp_path: Path) -> None:
    log = await started(tmp_path / "a.db", group_commit_ms=1000.0)
    try:
        t = time.perf_counter()
        await log.append(rec(1), durable=False)
        assert time.perf_counter() - t < 0.3  # far less than the group delay: it did not wait for the commit
        deadline = time.monotonic() + 5
        while ids(log.path) != ["dec000001"]:
            assert time.monotonic() < deadline, "non-durable record never committed"
            await asyncio.sleep(0.01)
    finally:
        await log.close()


async def test_durable_waits_for_the_group_delay(tmp_path: Path) -> None:
    log = await started(tmp_path / "a.db", group_commit_ms=40.0)
    try:
        t = time.perf_counter()
        await log.append(rec(1), durable=True)
        assert 0.035 <= time.perf_counter() - t < 2
    finally:
        await log.close()


async def test_close_flushes_what_is_queued(tmp_path: Path) -> None:
    log = await started(tmp_path / "a.db", group_commit_ms=10_000.0)
    for i in range(50):
        await log.append(rec(i), durable=False)
    await asyncio.wait_for(log.close(), 5)
    assert len(ids(tmp_path / "a.db")) == 50
    with pytest.raises(AuditUnavailable):
        await log.append(rec(99), durable=False)


async def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    for run in range(3):
        log = await started(path)
        for i in range(10):
            await log.append(rec(run * 10 + i), durable=True)
        await log.close()
    with AuditReader(path) as r:
        v = r.verify()
    assert v.ok and v.records == 30 and v.last_seq == 30


async def test_database_is_private(audit: AuditLog) -> None:
    await audit.append(rec(1), durable=True)
    for suffix in ("", "-wal", "-shm"):
        p = f"{audit.path}{suffix}"
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p


async def test_metrics_hook_and_stats(audit: AuditLog) -> None:
    calls: list[tuple[float, int, int]] = []

    class M:
        def audit_commit(self, seconds: float, records: int, queue_depth: int) -> None:
            calls.append((seconds, records, queue_depth))

    audit.metrics = M()
    await asyncio.gather(*(audit.append(rec(i), durable=True) for i in range(20)))
    await asyncio.sleep(0)
    assert sum(c[1] for c in calls) == 20
    assert all(c[0] > 0 and c[2] >= 0 for c in calls)
    s = audit.stats()
    assert s["last_commit_seconds"] > 0 and s["records_written"] == 20 and s["available"]


async def test_queue_over_max_is_refused_and_nothing_queued_is_lost(tmp_path: Path) -> None:
    log = await started(tmp_path / "a.db", group_commit_ms=10_000.0, max_queue=5)
    for i in range(5):
        await log.append(rec(i), durable=False)
    with pytest.raises(AuditUnavailable, match="queue full"):
        await log.append(rec(5), durable=True)
    await log.close()
    assert len(ids(tmp_path / "a.db")) == 5


async def test_odd_text_does_not_break_a_group(audit: AuditLog) -> None:
    odd = AuditRecord("odd", T0, "camp\u00e9", "+33612000001", "ALLOW", None, "allow", False, "enforce", "consent",
                      {"l": "v"}, "", "PJSIP/\udcff-bad", "1.1", "agi", "nul\x00inside")
    await asyncio.gather(audit.append(odd, durable=True), audit.append(rec(1), durable=True))
    got = {d["decision_id"]: d for d in audit.query()}
    assert got["odd"]["channel"] == "PJSIP/?-bad" and got["odd"]["campaign"] == "camp\u00e9"
    assert audit.verify().ok


async def test_cannot_open_is_audit_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(AuditUnavailable, match="cannot open"):
        await started(tmp_path / "dir.db")


# -- queries ---------------------------------------------------------------------------------------

async def test_query_filters(audit: AuditLog) -> None:
    for i in range(30):
        await audit.append(rec(i, campaign="a" if i % 2 else "b", verdict="ALLOW" if i % 3 else "BLOCK"),
                           durable=False)
    await audit.append(rec(100), durable=True)
    assert [d["seq"] for d in audit.query(campaign="a", since=T0 + 10, until=T0 + 20)] == [12, 14, 16, 18, 20]
    one = audit.query(number="+33612000007")
    assert len(one) == 1 and one[0]["decision_id"] == "dec000007" and one[0]["lists"]["consent"] == "v2"
    assert one[0]["reason"] is None and one[0]["would_block"] is False and one[0]["time"].endswith("Z")
    assert len(audit.query(limit=3)) == 3
    assert audit.query(limit=1, newest_first=True)[0]["decision_id"] == "dec000100"
    assert len(await audit.query_async(campaign="b")) == 15


def test_purge_goes_in_chunks_and_moves_the_anchor(tmp_path: Path) -> None:
    conn = open_writer(tmp_path / "a.db")
    rows = chain_rows(7)
    conn.executemany(f"INSERT INTO audit VALUES ({', '.join('?' * len(rows[0]))})", rows)
    conn.executemany("UPDATE meta SET value = ? WHERE key = ?", (("7", "head_seq"), (rows[-1][-1], "head_hash")))
    assert purge_chunk(conn, T0 + 6, chunk=2) == 2  # seq 1..2 (at T0+1, T0+2)
    assert purge_chunk(conn, T0 + 6, chunk=2) == 2
    assert purge_chunk(conn, T0 + 6, chunk=2) == 1  # seq 5; seq 6 is at the cutoff: kept
    assert purge_chunk(conn, T0 + 6, chunk=2) == 0
    conn.close()
    v = verification(tmp_path / "a.db")
    assert v.ok and v.anchor_seq == 5 and v.first_seq == 6 and v.records == 2


# -- disk full ------------------------------------------------------------------------------------

async def test_disk_full_refuses_durable_keeps_acknowledged_and_recovers(tmp_path: Path) -> None:
    log = await started(tmp_path / "a.db", group_commit_ms=1.0)
    try:
        acked = []
        for i in range(10):
            await log.append(rec(i), durable=True)
            acked.append(f"dec{i:06d}")
        pages = await log.run_in_writer(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
        await log.run_in_writer(lambda c: c.execute(f"PRAGMA max_page_count = {pages}").fetchone())
        refused = []
        for i in range(10, 400):
            if i % 2:
                await log.append(rec(i), durable=False)  # acknowledged at once: must survive the full disk
                acked.append(f"dec{i:06d}")
                continue
            try:
                await asyncio.wait_for(log.append(rec(i), durable=True), 5)
                acked.append(f"dec{i:06d}")
            except AuditUnavailable as e:
                assert "full" in str(e)
                refused.append(f"dec{i:06d}")
                if len(refused) >= 3:
                    break
        assert refused, "the database never filled up"
        assert log.stats()["failures"] >= 1 and not log.stats()["available"]
        await log.run_in_writer(lambda c: c.execute("PRAGMA max_page_count = 1073741823").fetchone())
        await asyncio.wait_for(log.append(rec(1000), durable=True), 5)
        acked.append("dec001000")
        assert log.stats()["available"]
    finally:
        await log.close()
    got = ids(tmp_path / "a.db")
    assert sorted(got) == sorted(acked)
    assert not set(refused) & set(got)
    assert verification(tmp_path / "a.db").ok


# -- retention ------------------------------------------------------------------------------------

async def test_retention_purges_a_prefix_and_verify_still_passes(tmp_path: Path) -> None:
    day = 86400.0
    now = [T0 - 100 * day]  # the writer purges at start: begin in the past, nothing to purge yet
    log = AuditLog(tmp_path / "a.db", AuditSection(retention_days=30), clock=lambda: now[0])
    await log.start()
    try:
        ats = [T0 - 60 * day, T0 - 50 * day, T0 - 40 * day, T0 - 10 * day, T0 - 45 * day, T0 - 1 * day]
        for i, at in enumerate(ats):
            await log.append(rec(i, at=at), durable=True)
        now[0] = T0
        # 45 days old but after a 10-day-old one in the chain: kept, so the chain never gets a hole.
        assert await log.purge() == 3
        assert await log.purge() == 0
        # The purge is itself on record, chained after the records it kept: what it purged, up to which seq.
        assert [d["decision_id"] for d in log.query()] == ["dec000003", "dec000004", "dec000005", "purge-3"]
        purge = log.query()[-1]
        assert purge["verdict"] == "PURGE" and "seq 1..3" in purge["detail"], purge
        v = log.verify()
        assert v.ok and v.anchor_seq == 3 and v.first_seq == 4 and "purged" in v.message, v.message
        await log.append(rec(9), durable=True)
    finally:
        await log.close()
    assert verification(tmp_path / "a.db").ok
    db(tmp_path / "a.db").execute("DELETE FROM audit WHERE seq = 4")
    assert verification(tmp_path / "a.db").bad_seq == 4


async def test_retention_runs_at_start(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    log = await started(path, retention_days=1)
    await log.append(rec(1, at=time.time() - 3 * 86400), durable=True)
    await log.append(rec(2, at=time.time()), durable=True)
    await log.close()
    log = await started(path, retention_days=1)
    await log.close()
    assert [i for i in ids(path) if not i.startswith("purge-")] == ["dec000002"]
    assert "purge-1" in ids(path)  # the purge's own record
    assert verification(path).ok


# -- through the service ---------------------------------------------------------------------------

async def test_gateway_check_is_audited(tmp_path: Path, sample_config: Config) -> None:
    log = await started(tmp_path / "a.db")
    gw = Gateway(sample_config, audit=log, clock=lambda: FIXED_NOW)
    gw.holder.load_all()
    await gw.start()
    try:
        allowed = await gw.check("0612000009", "prospect", channel="PJSIP/x-1", uniqueid="1.1")
        blocked = await gw.check("0612000001", "legacy")
    finally:
        await gw.close()
        await log.close()
    assert str(allowed.decision.verdict) == "ALLOW" and str(blocked.decision.verdict) == "BLOCK"
    rows = {d["decision_id"]: d for d in AuditReader(tmp_path / "a.db").query()}
    a, b = rows[allowed.decision_id], rows[blocked.decision_id]
    assert (a["number"], a["verdict"], a["channel"], a["uniqueid"]) == ("+33612000009", "ALLOW", "PJSIP/x-1", "1.1")
    assert (b["verdict"], b["reason"]) == ("BLOCK", "opposition_list")
    assert a["lists"] and a["at"] == FIXED_NOW.timestamp()
