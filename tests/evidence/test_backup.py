"""``dnc-gateway backup DIR`` under load, then a restore from it: the chain continues (a real ``serve``).

Before there was no backup procedure, and the obvious one lost records: a file copy of a live ``audit.db`` was
"intact" with 8 records where the live one had 58 (the rest were in the WAL).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from gateway.audit import AuditReader
from tests.evidence.serving import WebServe, cli, config


async def test_a_backup_under_load_restores_and_the_chain_continues(tmp_path: Path) -> None:
    conf = config(tmp_path / "gw")
    live = conf.parent / "audit.db"
    gw = WebServe(conf, tmp_path)
    gw.start()
    try:
        assert await gw.call("0612001000", "fours", uid="10.0") == ("ALLOW", "")
        assert gw.http("POST", "/api/consents", {"number": "0612001001", "source": "web form"})[0] == 201

        async def load() -> int:
            n = 0
            for i in range(60):
                verdict, _ = await gw.call(f"06120011{i:02d}", "fours", uid=f"11.{i}")
                n += verdict == "ALLOW"
            return n

        calls = asyncio.create_task(load())
        await asyncio.sleep(0.2)
        done = await asyncio.to_thread(cli, conf, "backup", str(tmp_path / "backup"))
        allowed = await calls
        assert allowed == 60
    finally:
        gw.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    backup = tmp_path / "backup"
    assert "ok   audit trail" in done.stdout and "ok   consent store" in done.stdout \
        and "ok   call history" in done.stdout, done.stdout
    for name in ("audit.db", "registry-side.db", "state.db", "state-marker"):
        assert (backup / name).stat().st_mode & 0o777 == 0o600, name
    assert backup.stat().st_mode & 0o777 == 0o700
    with AuditReader(backup / "audit.db") as r:
        v = r.verify()
        assert v.ok and v.records >= 2
        backed_head = v.last_seq
    # Restore: the gateway stopped, the copies put back in place of the files (their -wal and -shm removed).
    for name in ("audit.db", "registry-side.db", "state.db"):
        for suffix in ("-wal", "-shm"):
            Path(f"{conf.parent / name}{suffix}").unlink(missing_ok=True)
        os.replace(backup / name, conf.parent / name)
    gw.start()
    try:
        assert await gw.call("0612001200", "fours", uid="12.0") == ("ALLOW", "")
    finally:
        gw.stop()
    verified = cli(conf, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    with AuditReader(live) as r:
        rows = r.query(limit=10_000)
    assert rows[-1]["number"] == "+33612001200" and rows[-1]["seq"] == backed_head + 1
