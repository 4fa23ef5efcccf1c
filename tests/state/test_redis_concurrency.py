"""Two gateway processes sharing one real Redis: the frequency cap holds across them, outages behave as configured.

Each worker is a separate Python process running a ``Gateway`` on the Redis
backend (the same code path as ``dnc-gateway serve`` minus the sockets), so the
check-and-count races are real: two event loops, two connection pools, one Redis.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_sample
from tests.state.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]

WORKER = r"""
import asyncio, json, sys, time
from dataclasses import replace
from pathlib import Path
from gateway.config import load
from gateway.service import Gateway
from gateway.state.redis_store import RedisState
from tests.conftest import FIXED_NOW

cfg_path, url, failure, mode, numbers, param = sys.argv[1:7]
numbers = numbers.split(",")

async def main():
    cfg = load(Path(cfg_path))
    cfg = replace(cfg, gateway=replace(cfg.gateway, state=url, state_failure=failure))
    # Generous per-operation timeout: two busy processes on two shared cores must not make up outages.
    state = RedisState(url, connect_timeout=1.0, op_timeout=1.0, retry_interval=0.05)
    gw = Gateway(cfg, state=state, clock=lambda: FIXED_NOW)
    gw.holder.load_all()
    await gw.start()
    print("ready", flush=True)
    sys.stdin.readline()
    out = []

    async def one(n):
        o = await gw.check(n, "prospect")
        out.append((time.time(), n, str(o.decision.verdict), str(o.decision.reason or "")))

    if mode == "burst":  # every call at once: the worst case for check-then-count
        await asyncio.gather(*(one(n) for _ in range(int(param)) for n in numbers))
    else:  # a steady stream for ``param`` seconds, round robin over the numbers
        end = time.monotonic() + float(param)
        i = 0
        while time.monotonic() < end:
            await one(numbers[i % len(numbers)])
            i += 1
            await asyncio.sleep(0.01)
    await gw.close()
    print(json.dumps(out), flush=True)

asyncio.run(main())
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_sample(tmp_path / "conf")


def _numbers(count: int) -> list[str]:
    return [f"06120000{i:02d}" for i in range(10, 10 + count)]  # all on the sample consent list


def _spawn(config_path: Path, url: str, failure: str, mode: str, numbers: list[str], param: str,
           secret: str = "shared") -> subprocess.Popen[str]:
    env = {"PATH": "/usr/bin:/bin", "DNC_GATEWAY_STATE_SECRET": secret, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WORKER, str(config_path), url, failure, mode, ",".join(numbers),
                             param], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)


def _go(procs: list[subprocess.Popen[str]]) -> float:
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == "ready", f"worker did not start: {line!r}"
    t0 = time.time()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return t0


def _results(procs: list[subprocess.Popen[str]], timeout: float = 30) -> list[tuple[float, str, str, str]]:
    rows: list[tuple[float, str, str, str]] = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        assert p.returncode == 0, out[-2000:]
        rows.extend(tuple(r) for r in json.loads(out.strip().splitlines()[-1]))
    return rows


def test_two_processes_never_allow_a_fifth_attempt(tmp_path: Path, config_path: Path,
                                                   workers: list[subprocess.Popen[str]]) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        numbers = _numbers(10)
        workers.extend(_spawn(config_path, server.url, "closed", "burst", numbers, "8") for _ in range(2))
        _go(workers)
        rows = _results(workers)
    finally:
        server.stop()
    assert len(rows) == 2 * 8 * len(numbers)
    allowed = Counter(n for _, n, verdict, _ in rows if verdict == "ALLOW")
    reasons = Counter(reason for _, _, verdict, reason in rows if verdict == "BLOCK")
    # 16 calls per number raced from two processes: exactly 4 get through, every other is a frequency_cap.
    assert allowed == dict.fromkeys(numbers, 4)
    assert reasons == {"frequency_cap": 12 * len(numbers)}


@pytest.mark.parametrize("failure", ["closed", "open"])
def test_redis_killed_mid_run_then_back(tmp_path: Path, config_path: Path, workers: list[subprocess.Popen[str]],
                                        failure: str) -> None:
    # Persistence on: a Redis that restarts empty would forget the month's counts (see the deployment notes).
    server = RedisServer(tmp_path / "redis", persist=True)
    server.start()
    numbers = _numbers(30)
    try:
        workers.extend(_spawn(config_path, server.url, failure, "stream", numbers, "2.0") for _ in range(2))
        t0 = _go(workers)
        time.sleep(0.6)
        server.stop()
        down = time.time()
        time.sleep(0.5)
        restarting = time.time()  # Redis may answer before start() returns: "during" ends here
        server.start()
        up = time.time()
        rows = _results(workers)
    finally:
        server.stop()
    assert down - t0 > 0.3 and rows[-1][0] - up > 0.5, "the run must cover before, during and after the outage"
    during = [r for r in rows if down + 0.05 < r[0] < restarting]
    after = [r for r in rows if r[0] > up + 0.3]
    assert during and after
    unavailable = [r for r in rows if r[3] == "state_unavailable"]
    if failure == "closed":
        # Fail closed: no call allowed while the count cannot be kept, and the cap holds across the outage.
        assert all(r[2] == "BLOCK" and r[3] == "state_unavailable" for r in during)
        allowed = Counter(n for _, n, verdict, _ in rows if verdict == "ALLOW")
        assert max(allowed.values()) <= 4
    else:
        # Fail open: calls go on, decided without history.
        assert not unavailable
        assert any(r[2] == "ALLOW" for r in during)
    # Recovery without intervention: shortly after Redis is back, nothing is refused for want of state.
    assert all(r[3] != "state_unavailable" for r in after)
    assert all(r[0] <= up + 0.3 for r in unavailable)
