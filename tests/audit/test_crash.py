"""``kill -9`` while calls are being decided: every ALLOW a client received is in the audit, and the chain verifies.

Two levels: the audit log alone in a child process (acknowledged durable appends, then SIGKILL), and a real
``dnc-gateway serve`` driven over FastAGI exactly as Asterisk drives it (env block, then ``200 result=1`` to
every ``SET VARIABLE``), killed mid-run and restarted on the same database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.audit import AuditLog, AuditReader, AuditRecord
from gateway.cli import main
from gateway.config import AuditSection
from tests.conftest import SAMPLE_TOML, write_sample

REPO = Path(__file__).resolve().parents[2]  # the repository root: the gateway runs from there, as installed

CHILD = """
import asyncio, sys
from pathlib import Path
from gateway.audit import AuditLog, AuditRecord
from gateway.config import AuditSection

async def main():
    log = AuditLog(Path(sys.argv[1]), AuditSection(group_commit_ms=float(sys.argv[2])))
    await log.start()
    n = 0
    async def worker(w):
        nonlocal n
        while True:
            n += 1
            i = n
            r = AuditRecord(f"d{i}", 1790000000.0 + i, "c", "+33612000009", "ALLOW", None, "allow", False,
                            "enforce", "consent", {"l": "v"}, "", f"PJSIP/{w}", f"{i}", "agi", "")
            durable = i % 4 != 0
            await log.append(r, durable=durable)
            if durable:
                sys.stdout.write(f"d{i}\\n")
                sys.stdout.flush()
    await asyncio.gather(*(worker(w) for w in range(16)))

asyncio.run(main())
"""


def _verify_cli(db: Path) -> int:
    return main(["audit", "verify", "--db", str(db)])


def _run_child(db: Path, acks: int, group_commit_ms: float = 1.0) -> list[str]:
    """Run the appending child until it has acknowledged ``acks`` durable records, SIGKILL it; every id it printed."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(group_commit_ms)], stdout=subprocess.PIPE,
                             cwd=REPO)
    assert child.stdout is not None
    acked: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while len(acked) < acks and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acked.append(line.decode().strip())
        child.send_signal(signal.SIGKILL)
        # Whatever the child wrote before dying was acknowledged too.
        acked += [x for x in child.stdout.read().decode().split("\n") if x]
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= acks, "the child did not get going"
    return acked


# 0: the shipped default (no fixed wait, issue 16); 1: an explicit group_commit_ms wait.
@pytest.mark.parametrize("group_commit_ms", [0.0, 1.0])
def test_kill_9_keeps_every_acknowledged_durable_append(tmp_path: Path, group_commit_ms: float) -> None:
    db = tmp_path / "audit.db"
    acked = _run_child(db, 2000, group_commit_ms)
    with AuditReader(db) as r:
        stored = {d["decision_id"] for d in r.query(limit=10**9)}
        assert r.verify().ok
    missing = [a for a in acked if a not in stored]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"
    assert _verify_cli(db) == 0


async def test_reopen_after_kill_then_append(tmp_path: Path) -> None:
    """The writer restarts on a database left by a killed process (WAL not checkpointed) and extends it."""
    db = tmp_path / "audit.db"
    await asyncio.to_thread(_run_child, db, 200)
    log = AuditLog(db, AuditSection())
    await log.start()
    try:
        before = log.stats()["head_seq"]
        assert before >= 200
        await log.append(AuditRecord("after", time.time(), "c", "+33612000009", "ALLOW", None, "allow", False,
                                     "enforce", "consent"), durable=True)
        assert log.stats()["head_seq"] == before + 1
    finally:
        await log.close()
    assert await asyncio.to_thread(_verify_cli, db) == 0


# -- a real gateway over FastAGI ----------------------------------------------------------------------

CRASH_CAMPAIGN = """
[campaigns.crash]
regime = "opposition"
lists = ["bloctel", "company-dnc"]
caller_id = "0162000000"
check_hours = false       # the test must give ALLOWs whatever the hour and day it runs
check_holidays = false
check_frequency = false
check_staleness = false
"""


def _config(root: Path) -> Path:
    path = write_sample(root)
    path.write_text(SAMPLE_TOML.replace('state = "memory://"', 'state = "sqlite://state.db"\naudit = "audit.db"')
                    + CRASH_CAMPAIGN)
    return path


class Server:
    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.stderr = open(log, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "--log-level", "INFO", "serve", "--no-web",
             "--agi-listen", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=self.stderr, cwd=REPO)

    def port(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"ready: FastAGI on [^ ]*?:(\d+)", self.log.read_text(errors="replace"))
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"gateway did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self, sig: int) -> int:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(15)
        finally:
            self.proc.kill()
            self.proc.wait(5)
            self.stderr.close()


async def _session(port: int, number: str, n: int) -> dict[str, str]:
    """One FastAGI session as Asterisk plays it; the variables set so far, even if the server dies mid-way."""
    from tests.agi.fake_asterisk import answer, env_block

    variables: dict[str, str] = {}
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(env_block(args=(number, "crash"), channel=f"PJSIP/agent-{n:08x}", uniqueid=f"1795418477.{n}"))
        while True:
            line = await asyncio.wait_for(reader.readline(), 5)
            if not line:
                break
            writer.write(answer(line.decode().rstrip("\n"), variables, False).encode())
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return variables


async def _drive(port: int, allowed: dict[str, str], blocked: list[str], stop_after: int, kill: asyncio.Event,
                 workers: int = 12) -> None:
    """Call on ``workers`` concurrent sessions until the server is gone; ``kill`` is set after ``stop_after`` ALLOWs."""
    count = 0

    async def worker(w: int) -> None:
        nonlocal count
        while True:  # until the server is gone: sessions are in flight when it is killed
            count += 1
            n = count
            # One call in seven goes to a number on the opposition list: BLOCKs are audited too.
            number = "0612000003" if n % 7 == 0 else f"0612{1000 + n % 9000:06d}"
            try:
                v = await _session(port, number, n)
            except (OSError, TimeoutError):
                return  # the server is gone
            if v.get("DNC_VERDICT") == "ALLOW" and v.get("DNC_DECISION_ID"):
                allowed[v["DNC_DECISION_ID"]] = number
                if len(allowed) >= stop_after:
                    kill.set()
            elif v.get("DNC_VERDICT") == "BLOCK":
                blocked.append(v.get("DNC_DECISION_ID", ""))

    await asyncio.gather(*(worker(w) for w in range(workers)))


@pytest.mark.slow
async def test_kill_9_of_serving_gateway_loses_no_allow(tmp_path: Path) -> None:
    pytest.importorskip("gateway.agi.server", reason="the FastAGI server (gateway/agi/server.py) is not there yet")
    pytest.importorskip("gateway.metrics", reason="gateway/metrics.py (needed by serve) is not there yet")
    config = _config(tmp_path / "conf")
    db = tmp_path / "conf" / "audit.db"
    server = Server(config, tmp_path / "serve.log")
    allowed: dict[str, str] = {}
    blocked: list[str] = []
    try:
        port = await asyncio.to_thread(server.port)
        kill = asyncio.Event()
        driving = asyncio.create_task(_drive(port, allowed, blocked, 400, kill))
        await asyncio.wait([asyncio.ensure_future(kill.wait()), driving], timeout=30,
                           return_when=asyncio.FIRST_COMPLETED)
        assert kill.is_set(), f"no {400} ALLOWs in 30 s ({len(allowed)}):\n{server.log.read_text()[-2000:]}"
        # Mid-run: the workers still have sessions in flight when the process dies.
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        await asyncio.wait_for(driving, 30)
    finally:
        if server.proc.poll() is None:
            server.stop(signal.SIGKILL)
    assert len(allowed) >= 400 and blocked

    # Restart on the crashed database: it opens, keeps the chain going, and shuts down cleanly.
    server = Server(config, tmp_path / "serve2.log")
    try:
        port = await asyncio.to_thread(server.port)
        after = await _session(port, "0612009999", 10**6)
        assert after.get("DNC_VERDICT") == "ALLOW"
        allowed[after["DNC_DECISION_ID"]] = "0612009999"
    finally:
        assert server.stop(signal.SIGTERM) == 0

    with AuditReader(db) as r:
        stored = {d["decision_id"]: d for d in r.query(limit=10**9)}
    missing = [i for i in allowed if i not in stored]
    assert not missing, f"{len(missing)} of {len(allowed)} ALLOWs the client received are not in the audit"
    assert all(stored[i]["verdict"] == "ALLOW" for i in allowed)
    assert any(d["verdict"] == "BLOCK" and d["reason"] == "opposition_list" for d in stored.values())
    assert os.stat(db).st_mode & 0o077 == 0
    assert await asyncio.to_thread(_verify_cli, db) == 0

