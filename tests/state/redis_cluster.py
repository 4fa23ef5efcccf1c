"""A real three-primary Redis Cluster for the tests (``redis-server --cluster-enabled`` and
``redis-cli --cluster create``), on free ports of 127.0.0.1, no persistence."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redis.exceptions import RedisError

from tests.state.redis_server import free_port

BUS_OFFSET = 10000  # a Cluster node also listens on its port + 10000 (the cluster bus)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster-bus port (+10000) is a valid port and free too: an ephemeral port above 55535
    has no bus port, and the node would not start."""
    while True:
        port = free_port()
        if port + BUS_OFFSET <= 65535 and _bindable(port + BUS_OFFSET):
            return port


class ClusterSet:
    def __init__(self, workdir: Path, primaries: int = 3) -> None:
        self.workdir = workdir
        self.ports = [cluster_port() for _ in range(primaries)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + "/"

    def start(self, timeout: float = 15.0) -> None:
        exe, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if exe is None or cli is None:
            pytest.skip("redis-server or redis-cli is not installed (Debian: apt-get install redis-server)")
        for port in self.ports:
            d = self.workdir / str(port)
            d.mkdir(parents=True, exist_ok=True)
            self.procs.append(subprocess.Popen(
                [exe, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(d / "nodes.conf"), "--save", "", "--appendonly", "no",
                 "--dir", str(d), "--logfile", str(d / "redis.log"), "--daemonize", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + timeout
        while not self._all_answer():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the cluster's servers did not start")
            time.sleep(0.05)
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
        while not self._ok():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def _all_answer(self) -> bool:
        try:
            for p in self.ports:
                with redis.Redis(host="127.0.0.1", port=p, socket_timeout=1) as r:
                    r.ping()
        except (RedisError, OSError):
            return False
        return True

    def _ok(self) -> bool:
        try:
            for p in self.ports:
                with redis.Redis(host="127.0.0.1", port=p, socket_timeout=1) as r:
                    if r.cluster("info").get("cluster_state") != "ok":
                        return False
        except (RedisError, OSError):
            return False
        return True

    def keys(self) -> dict[int, int]:
        """How many keys each primary holds."""
        out = {}
        for p in self.ports:
            with redis.Redis(host="127.0.0.1", port=p, socket_timeout=1) as r:
                out[p] = int(r.dbsize())
        return out

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=5)
        self.procs = []
