"""A real Sentinel set-up for the tests: a primary, a replica and three Sentinels (``redis-server --sentinel``),
each on a free port of 127.0.0.1, no persistence, in its own folder."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redis.exceptions import RedisError

from tests.state.redis_server import free_port

SERVICE = "dncgw"
DOWN_AFTER_MS = 400  # how long a silent primary takes to be deemed down (subjectively, then by quorum)


def client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)


class SentinelSet:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.primary = free_port()
        self.replica = free_port()
        self.sentinels = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def _spawn(self, port: int, *args: str) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
        d = self.workdir / str(port)
        d.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [exe, *args, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(d), "--logfile", str(d / "redis.log"), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self, timeout: float = 15.0) -> None:
        self._spawn(self.primary)
        self._spawn(self.replica, "--replicaof", "127.0.0.1", str(self.primary))
        for port in self.sentinels:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n")
            exe = shutil.which("redis-server") or "redis-server"
            d = self.workdir / str(port)
            d.mkdir(parents=True, exist_ok=True)
            self.procs[port] = subprocess.Popen(
                [exe, str(conf), "--sentinel", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
                 "--logfile", str(d / "sentinel.log"), "--daemonize", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Ready when the replica is in sync and every Sentinel knows the replica and the two other Sentinels:
        # only then can they agree on a failover.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with client(self.replica) as r:
                    synced = r.info("replication").get("master_link_status") == "up"
                states = []
                for p in self.sentinels:
                    with client(p) as r:
                        states.append(r.sentinel_master(SERVICE))
                if synced and all(s["num-other-sentinels"] == 2 and s["num-slaves"] == 1 for s in states):
                    return
            except (RedisError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the Sentinel set-up was not ready within {timeout}s")

    def primary_port(self) -> int | None:
        """The primary's port as the first Sentinel answering names it."""
        for p in self.sentinels:
            try:
                with client(p) as r:
                    _, port = r.sentinel_get_master_addr_by_name(SERVICE)
            except (RedisError, OSError):
                continue
            return int(port)
        return None

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port)
        proc.kill()  # SIGKILL: the primary vanishing is what the test is about
        proc.wait(timeout=5)

    def stop(self) -> None:
        for port in list(self.procs):
            self.kill(port)
