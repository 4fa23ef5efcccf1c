"""No evidence purged by a clock (a real ``serve`` under libfaketime).

Before: one start six years ahead purged the whole audit trail and ``audit verify`` still said "intact"; one
start 42 days ahead, one call and a clean stop, and once the clock was right again a fifth call in 30 days was
allowed (the attempts had been pruned from the history). Purges now count from the plausible time (the newest
record plus the uptime and a day, gateway/clockguard.py), and every audit purge is itself a record of the chain.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.audit import AuditLog, AuditReader
from gateway.config import AuditSection
from tests.audit.helpers import rec
from tests.evidence.serving import WebServe, cli, config, faked, needs_faketime, set_time

pytestmark = needs_faketime
DAY0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def clocked(tmp_path: Path) -> tuple[WebServe, Path]:
    clock = tmp_path / "clock"
    set_time(clock, DAY0)
    return WebServe(config(tmp_path / "gw"), tmp_path, faked({}, clock)), clock


async def test_a_start_six_years_ahead_purges_no_audit_record(tmp_path: Path) -> None:
    gw, clock = clocked(tmp_path)
    gw.start()
    try:
        for i in range(5):
            assert await gw.call(f"06120006{i:02d}", "fours", uid=f"6.{i}") == ("ALLOW", "")
    finally:
        gw.stop()
    set_time(clock, DAY0 + timedelta(days=6 * 365))
    gw.start()
    try:
        assert await gw.call("0612000699", "fours", uid="6.9") == ("ALLOW", "")
    finally:
        gw.stop()
    done = cli(gw.conf, "audit", "verify")
    assert done.returncode == 0 and "purged" not in done.stdout, done.stdout
    with AuditReader(gw.conf.parent / "audit.db") as r:
        assert len([d for d in r.query(limit=100) if d["verdict"] == "ALLOW"]) == 6


async def test_a_start_42_days_ahead_does_not_make_a_fifth_call_legal(tmp_path: Path) -> None:
    gw, clock = clocked(tmp_path)
    gw.start()
    try:
        for day in range(4):
            set_time(clock, DAY0 + timedelta(days=day))
            assert await gw.call("0612000700", "fours", uid=f"7.{day}") == ("ALLOW", "")
    finally:
        gw.stop()
    set_time(clock, DAY0 + timedelta(days=45))  # the clock jumps 42 days ahead
    gw.start()
    try:
        assert await gw.call("0612000700", "fours", uid="7.8") == ("ALLOW", "")  # 30 days after, by that clock
    finally:
        gw.stop()
    set_time(clock, DAY0 + timedelta(days=4))  # right again
    gw.start()
    try:
        assert await gw.call("0612000700", "fours", uid="7.9") == ("BLOCK", "frequency_cap")
    finally:
        gw.kill()


async def test_a_purge_is_a_record_of_the_chain_and_verify_lists_it(tmp_path: Path) -> None:
    day = 86400.0
    t0 = DAY0.timestamp()
    now = [t0]
    db = tmp_path / "audit.db"
    log = AuditLog(db, AuditSection(retention_days=30), clock=lambda: now[0])
    await log.start()
    try:
        for i in range(3):
            await log.append(rec(i, at=t0 + i), durable=True)
        for i in range(3, 6):  # the gateway kept working: the clock is believed as it goes
            now[0] = t0 + (i - 2) * 6 * day
            await log.append(rec(i, at=now[0]), durable=True)
        now[0] = t0 + 31 * day
        assert await log.purge() == 3
    finally:
        await log.close()
    done = cli(config(tmp_path / "gw"), "audit", "verify", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "purge record seq 7" in done.stdout and "seq 1..3" in done.stdout, done.stdout
    assert "warning" not in done.stderr
    # A purge by hand (or by an older release) leaves a gap no purge record accounts for: said so.
    with sqlite3.connect(db) as c:
        c.execute("UPDATE meta SET value = '4' WHERE key = 'anchor_seq'")
    assert "no purge record" in cli(config(tmp_path / "gw"), "audit", "verify", "--db", str(db)).stderr


async def test_a_clock_ahead_by_more_than_a_week_is_not_believed_on_a_second_start_either(tmp_path: Path) -> None:
    day = 86400.0
    t0 = DAY0.timestamp()
    now = [t0]
    db = tmp_path / "audit.db"
    for step in range(3):  # three starts, the clock six years ahead from the second on
        log = AuditLog(db, AuditSection(retention_days=1830), clock=lambda: now[0])
        await log.start()
        try:
            await log.append(rec(step, at=now[0]), durable=True)
            assert await log.purge() == 0
        finally:
            await log.close()
        now[0] = t0 + 6 * 365 * day
    with AuditReader(db) as r:
        assert [d["decision_id"] for d in r.query()] == ["dec000000", "dec000001", "dec000002"]
