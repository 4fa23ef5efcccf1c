"""The audit file is checked, not trusted (a real ``serve``; the file deleted, replaced, its WAL deleted).

Before, the gateway went on acknowledging ALLOWs into a file no one would ever read again: after the stop the
ALLOWs answered since were gone, and with the WAL deleted and a kill -9, every record. Now the writer checks the
file and its WAL (device and inode) at each commit and every second:

- deleted, or its WAL deleted: put back from the writer's open connection (which still sees every committed
  record), so the chain continues in the file at the path, and every ALLOW answered is in it after a kill -9;
- replaced by another file: never overwritten; every ALLOW is refused (BLOCK audit_unavailable), ``dnc_audit_up``
  0 and ``/healthz`` 503, until the gateway restarts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.audit import AuditReader
from tests.evidence.serving import WebServe, cli, config


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[WebServe]:
    serve = WebServe(config(tmp_path / "gw"), tmp_path)
    serve.start()
    try:
        yield serve
    finally:
        serve.kill()


def allowed_in(db: Path) -> set[str]:
    with AuditReader(db) as r:
        return {d["number"] for d in r.query(limit=10_000) if d["verdict"] == "ALLOW"}


async def calls(gw: WebServe, numbers: range) -> list[tuple[str, str]]:
    return [await gw.call(f"06120001{i:02d}", "fours", uid=f"1.{i}") for i in numbers]


@pytest.mark.parametrize("what", ["file", "wal"])
async def test_a_deleted_audit_file_or_wal_is_restored_and_nothing_answered_is_lost(gw: WebServe, what: str) -> None:
    db = gw.conf.parent / "audit.db"
    assert await calls(gw, range(5)) == [("ALLOW", "")] * 5
    (db if what == "file" else Path(f"{db}-wal")).unlink()
    assert await calls(gw, range(5, 10)) == [("ALLOW", "")] * 5
    gw.kill()  # kill -9 right after the last acknowledgement
    assert db.exists()
    done = cli(gw.conf, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert allowed_in(db) == {f"+336120001{i:02d}" for i in range(10)}
    assert os.stat(db).st_mode & 0o777 == 0o600


async def test_a_replaced_audit_file_refuses_every_allow_until_restart(gw: WebServe) -> None:
    db = gw.conf.parent / "audit.db"
    assert await calls(gw, range(5)) == [("ALLOW", "")] * 5
    assert gw.http("GET", "/healthz")[0] == 200 and gw.metric("dnc_audit_up") == 1.0
    copy = db.with_name("copy.db")
    shutil.copyfile(db, copy)
    os.replace(copy, db)  # another inode at the path: a restore, an `mv` over it
    await asyncio.sleep(1.5)  # the writer's idle check: /healthz says so before the next call
    status, body = gw.http("GET", "/healthz")
    assert status == 503 and body["audit"] == "unavailable" and "replaced" in body["audit_problem"], body
    assert gw.metric("dnc_audit_up") == 0.0
    assert await calls(gw, range(5, 8)) == [("BLOCK", "audit_unavailable")] * 3
    gw.kill()
    assert not {f"+336120001{i:02d}" for i in range(5, 8)} & allowed_in(db)
