"""``[audit] commit_timeout``: an ALLOW whose record is not committed in time is answered BLOCK audit_unavailable,
a stalled disk makes the log unavailable (``/healthz`` 503, ``dnc_audit_up`` 0), and a record committed after its
caller was answered BLOCK is followed in the chain by one that says so. Before, the wait had no deadline: a
stalled disk hung every ALLOW while ``/healthz`` said ok."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path

from gateway.audit import AuditLog
from gateway.config import AuditSection, Config
from gateway.service import Gateway
from gateway.web.durability import audit_status, evidence_ok
from tests.audit.helpers import ids, rec
from tests.conftest import FIXED_NOW


async def test_a_stalled_commit_answers_block_and_says_so(tmp_path: Path, sample_config: Config) -> None:
    config = dataclasses.replace(sample_config, audit=AuditSection(commit_timeout=0.3))
    log = AuditLog(tmp_path / "a.db", config.audit)
    await log.start()
    gw = Gateway(config, audit=log, clock=lambda: FIXED_NOW)
    gw.holder.load_all()
    await gw.start()
    release = threading.Event()
    try:
        assert str((await gw.check("0612000009", "prospect")).decision.verdict) == "ALLOW"
        stall = asyncio.ensure_future(log.run_in_writer(lambda conn: release.wait(10)))  # a disk that hangs
        await asyncio.sleep(0.05)
        outcome = await asyncio.wait_for(gw.check("0612000019", "prospect"), 5)
        assert str(outcome.decision.verdict) == "BLOCK" and str(outcome.decision.reason) == "audit_unavailable"
        assert "commit_timeout" in outcome.decision.detail
        await asyncio.sleep(0.4)  # the queued record has now waited longer than commit_timeout
        body = audit_status(log.stats())
        assert body["audit"] == "unavailable" and "commit_timeout" in body["audit_problem"]
        assert not evidence_ok(body)
        release.set()
        await stall
        await asyncio.sleep(0.2)
        assert log.stats()["available"]
        # The late ALLOW record is on file, followed by the BLOCK that was the answer.
        await log.append(rec(99), durable=True)
    finally:
        release.set()
        await gw.close()
        await log.close()
    from gateway.audit import AuditReader
    with AuditReader(tmp_path / "a.db") as r:
        late = [d for d in r.query(limit=100) if d["number"] == "+33612000019"]
    assert [d["verdict"] for d in late] == ["ALLOW", "BLOCK"] and late[1]["reason"] == "audit_unavailable"
    assert late[0]["decision_id"] == late[1]["decision_id"]
    assert "dec000099" in ids(tmp_path / "a.db")
