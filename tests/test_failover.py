"""Failover: two ``dnc-gateway serve`` processes sharing Redis, a load of FastAGI calls that try gw1 then
gw2 like the dialplan does, and gw1 killed, stopped or frozen mid-run: every call still gets a decision,
and none waits longer than the configured per-gateway timeout allows.

The client plays Asterisk's side of FastAGI byte for byte as res_agi.c does: the environment block, a
blank line, then ``200 result=1`` for every SET VARIABLE and ``200 result=0`` for the EXEC MSet the
gateway sends by default. Killed and terminated gateways refuse or reset the connection, which Asterisk
sees at once. A frozen one (SIGSTOP: the kernel still
accepts connections) is only bounded by the client's per-gateway timeout; Asterisk's run_agi() waits
for commands with no limit, so in production that bound must come from a watchdog that kills a frozen
gateway (its sockets then close and the dialplan moves on).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import write_sample
from tests.state.redis_server import RedisServer, free_port

pytest.importorskip("gateway.agi.server")

ROOT = Path(__file__).resolve().parents[1]
PER_GATEWAY_TIMEOUT = 0.5  # what the dialplan gives one gateway before trying the next
WORKERS = 12
RUN_SECONDS = 2.0
INCIDENT_AT = 0.7


@dataclass(frozen=True)
class Call:
    started: float
    elapsed: float
    gateway: int | None  # index of the gateway that decided, None: no decision
    verdict: str
    tried: int


def env_block(port: int, number: str, uid: str) -> bytes:
    lines = ["agi_network: yes", "agi_network_script: check", f"agi_request: agi://127.0.0.1:{port}/check",
             "agi_channel: PJSIP/x-1", "agi_language: en", "agi_type: PJSIP", f"agi_uniqueid: {uid}",
             "agi_version: 23.4.1", "agi_callerid: 1000", "agi_calleridname: agent", "agi_context: outbound",
             f"agi_extension: {number}", "agi_priority: 2", "agi_enhanced: 0.0", "agi_accountcode: ",
             "agi_threadid: 140000000000000", f"agi_arg_1: {number}", "agi_arg_2: prospect"]
    return ("\n".join(lines) + "\n\n").encode()


async def ask(port: int, number: str, uid: str) -> str | None:
    """One FastAGI session; the verdict the gateway set, or None (refused, reset, FAILURE, timeout)."""
    writer = None
    try:
        async with asyncio.timeout(PER_GATEWAY_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(env_block(port, number, uid))
            verdict = None
            while line := await reader.readline():
                text = line.decode("utf-8", "replace").strip()
                if text.startswith("FAILURE"):
                    return None
                if text.startswith("SET VARIABLE DNC_VERDICT "):
                    verdict = text.split(" ", 3)[3].strip('"')
                elif text.startswith("EXEC MSet ") and (m := re.search(r"DNC_VERDICT=(\w+)", text)):
                    verdict = m.group(1)
                writer.write(b"200 result=0\n" if text.startswith("EXEC ") else b"200 result=1\n")
                await writer.drain()
            return verdict
    except (OSError, TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.close()


async def dial(ports: list[int], number: str, uid: str, t0: float) -> Call:
    started = time.monotonic()
    for i, port in enumerate(ports):
        verdict = await ask(port, number, uid)
        if verdict:
            return Call(started - t0, time.monotonic() - started, i, verdict, i + 1)
    return Call(started - t0, time.monotonic() - started, None, "", len(ports))


async def load(ports: list[int], incident: asyncio.Event) -> tuple[list[Call], float]:
    t0 = time.monotonic()
    calls: list[Call] = []
    incident_at = 0.0

    async def worker(w: int) -> None:
        n = 0
        while time.monotonic() - t0 < RUN_SECONDS:
            calls.append(await dial(ports, f"06120000{10 + (w * 7 + n) % 41:02d}", f"{w}.{n}", t0))
            n += 1
            await asyncio.sleep(0.005)

    async def trigger() -> None:
        nonlocal incident_at
        await asyncio.sleep(INCIDENT_AT)
        incident_at = time.monotonic() - t0
        incident.set()

    await asyncio.gather(trigger(), *(worker(w) for w in range(WORKERS)))
    return calls, incident_at


# ``dnc-gateway serve`` exactly as installed (with uvloop when present).
SERVE = "import sys; from gateway.cli import main; sys.exit(main())"


@dataclass
class Gateways:
    procs: list[subprocess.Popen[bytes]]
    ports: list[int]


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Gateways]:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    conf = write_sample(tmp_path / "conf")
    text = conf.read_text().replace('state = "memory://"', f'state = "{redis.url}"\nstate_failure = "closed"')
    conf.write_text(text)
    ports = [free_port(), free_port()]
    procs = []
    for i, port in enumerate(ports):
        env = dict(os.environ, DNC_GATEWAY_INSTANCE=f"gw{i + 1}", DNC_GATEWAY_STATE_SECRET="failover-test",
                   PYTHONPATH=str(ROOT))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", SERVE,
             "--config", str(conf), "--log-level", "WARNING", "serve", "--agi-listen", f"127.0.0.1:{port}",
             "--no-web"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    try:
        for proc, port in zip(procs, ports, strict=True):
            deadline = time.monotonic() + 20
            while True:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    pytest.fail(f"gateway on {port} exited with {proc.returncode}: {err[-2000:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"gateway on {port} did not listen within 20s"
                    time.sleep(0.05)
        yield Gateways(procs, ports)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
            p.wait(timeout=10)
            if p.stderr:
                p.stderr.close()
        redis.stop()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP], ids=["kill", "term", "freeze"])
async def test_no_call_is_left_without_a_decision(gateways: Gateways, sig: signal.Signals) -> None:
    incident = asyncio.Event()
    gw1 = gateways.procs[0]

    async def strike() -> None:
        await incident.wait()
        gw1.send_signal(sig)

    (calls, incident_at), _ = await asyncio.gather(load(gateways.ports, incident), strike())

    assert len(calls) > 50, f"only {len(calls)} calls: the load did not run"
    undecided = [c for c in calls if c.gateway is None]
    assert not undecided, f"{len(undecided)} calls got no decision: {undecided[:3]}"
    assert {c.verdict for c in calls} <= {"ALLOW", "BLOCK"}
    # Each gateway costs at most its timeout: no call waits beyond the dialplan's budget.
    budget = PER_GATEWAY_TIMEOUT * len(gateways.ports) + 0.25
    assert max(c.elapsed for c in calls) <= budget, max(calls, key=lambda c: c.elapsed)
    before = [c for c in calls if c.started + c.elapsed < incident_at]
    after = [c for c in calls if c.started > incident_at + 0.05]
    assert before and all(c.gateway == 0 for c in before), "gw1 answered before the incident"
    assert after and all(c.gateway == 1 for c in after), "gw2 took over after the incident"
    if sig is signal.SIGTERM:
        # The upgrade path: gw1 stops accepting at once, finishes what it had, exits cleanly.
        assert gw1.wait(timeout=15) == 0
        # Refused connections fail over in well under the timeout: no call paid for gw1's shutdown.
        assert max(c.elapsed for c in after) < PER_GATEWAY_TIMEOUT
    if sig is signal.SIGKILL:
        assert max(c.elapsed for c in after) < PER_GATEWAY_TIMEOUT
