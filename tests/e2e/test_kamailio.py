"""End to end with a real Kamailio: kamailio-config/kamailio.cfg as shipped, ``dnc-gateway serve`` with its SIP
redirect server, SIPp playing the agents and the carrier, all on loopback.

What a compliance officer would check: no listed number reaches the carrier, every unlisted one does
exactly once, every call is in the audit trail (source ``sip``); with the gateway killed, calls are
refused (the proxy fails closed); restarted, calls flow again.

Kamailio is a Debian package (``kamailio``, installed by scripts/bootstrap.sh test): the module is skipped
only where it or sipp cannot be found (``DNC_KAMAILIO=/path/to/kamailio`` overrides the lookup).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.audit import AuditReader
from tests.conftest import SAMPLE_TOML, write_sample
from tests.e2e.pbx import ROOT, SERVE, free_tcp_port, free_udp_port, stop, wait_until

KAMAILIO = os.environ.get("DNC_KAMAILIO") or shutil.which("kamailio") or (
    "/usr/sbin/kamailio" if os.access("/usr/sbin/kamailio", os.X_OK) else None)
SIPP = shutil.which("sipp")
CONFIG = ROOT / "kamailio-config"

pytestmark = pytest.mark.skipif(not (KAMAILIO and SIPP), reason="needs kamailio (Debian: apt-get install kamailio) "
                                "and sipp (sip-tester)")

CALLER_ID = "0162000000"  # the sample campaigns' presented number
LISTED = [f"06120000{i:02d}" for i in range(1, 6)]  # the sample opposition list
UNLISTED = [f"06120007{i:02d}" for i in range(0, 8)]
# The screening must not depend on the hour or the date the suite runs at (hours, holidays and list ages are
# tested elsewhere): a campaign that checks the lists, the caller ID and the attempt cap only.
CAMPAIGN = f"""
[campaigns.outbound]
regime = "opposition"
lists = ["bloctel"]
caller_id = "{CALLER_ID}"
check_hours = false
check_holidays = false
check_staleness = false
"""


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sip_port = _free_udp_and_tcp_port()  # the gateway listens on both
        self.agi_port = free_tcp_port()
        self.carrier_port = free_udp_port()
        self.proxy_port = free_udp_port()
        self.agent_port = free_udp_port()
        conf = write_sample(root / "gw", CAMPAIGN + f"""
[sip]
listen = "127.0.0.1:{self.sip_port}"
route = "sip:carrier@127.0.0.1:{self.carrier_port}"
""")
        conf.write_text(conf.read_text().replace('state = "memory://"',
                                                 'state = "sqlite://state.db"\naudit = "audit.db"'))
        assert 'audit = "audit.db"' in conf.read_text() and SAMPLE_TOML
        self.conf = conf
        self.audit = conf.parent / "audit.db"
        self.gateway: subprocess.Popen[bytes] | None = None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.carrier_log = root / "carrier.log"
        self.runs = 0

    # -- the parts --------------------------------------------------------------------------------------
    def start_gateway(self) -> None:
        log = open(self.root / "gateway.log", "ab")  # noqa: SIM115 (closed with the process)
        self.gateway = subprocess.Popen(
            [sys.executable, "-c", SERVE, "--config", str(self.conf), "--log-level", "INFO", "serve",
             "--agi-listen", f"127.0.0.1:{self.agi_port}", "--no-web"],
            cwd=self.conf.parent, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=log, stderr=log)
        log.close()
        wait_until(self._gateway_answers, "the gateway's SIP server", 30)

    def _gateway_answers(self) -> bool:
        assert self.gateway is not None
        assert self.gateway.poll() is None, (self.root / "gateway.log").read_text()[-3000:]
        options = (f"OPTIONS sip:gw@127.0.0.1:{self.sip_port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK-probe{time.monotonic_ns()}\r\n"
                   "From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:gw@127.0.0.1>\r\nCall-ID: probe\r\n"
                   "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            s.sendto(options, ("127.0.0.1", self.sip_port))
            try:
                return s.recv(4096).startswith(b"SIP/2.0 200")
            except OSError:
                return False

    def kill_gateway(self) -> None:
        assert self.gateway is not None
        self.gateway.send_signal(signal.SIGKILL)
        self.gateway.wait(10)
        self.gateway = None

    def start_proxy(self) -> None:
        assert KAMAILIO is not None
        log = open(self.root / "kamailio.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [KAMAILIO, "-f", str(CONFIG / "kamailio.cfg"), "-DD", "-E", "-m", "64", "-M", "8",
             "-w", str(self.root), "-Y", str(self.root), "-P", str(self.root / "kamailio.pid"),
             "-A", f"LISTEN=udp:127.0.0.1:{self.proxy_port}",
             "-A", f'GATEWAY="sip:127.0.0.1:{self.sip_port}"', "-A", "GW_TIMEOUT=1000"],
            stdout=log, stderr=log)
        log.close()
        self.procs.append(proc)
        wait_until(lambda: proc.poll() is not None or b"Listening on" in (self.root / "kamailio.log").read_bytes()
                   or _udp_bound(self.proxy_port), "kamailio to listen", 20)
        assert proc.poll() is None, (self.root / "kamailio.log").read_text()[-3000:]

    def start_carrier(self) -> None:
        assert SIPP is not None
        proc = subprocess.Popen(
            [SIPP, "-sf", str(CONFIG / "sipp" / "carrier.xml"), "-i", "127.0.0.1", "-p", str(self.carrier_port),
             "-nostdin", "-trace_logs", "-log_file", str(self.carrier_log)],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_until(lambda: _udp_bound(self.carrier_port), "the carrier's SIPp", 10)

    def call(self, numbers: list[str], campaign: str = "outbound") -> list[str]:
        """One agent call per number (SIPp), all placed at once; the agent's log lines, one per call."""
        assert SIPP is not None
        self.runs += 1
        csv = self.root / f"calls{self.runs}.csv"
        csv.write_text("SEQUENTIAL\n" + "".join(f"{n};{campaign};{CALLER_ID}\n" for n in numbers))
        log = self.root / f"agent{self.runs}.log"
        run = subprocess.run(
            [SIPP, f"127.0.0.1:{self.proxy_port}", "-sf", str(CONFIG / "sipp" / "agent.xml"), "-inf", str(csv),
             "-i", "127.0.0.1", "-p", str(self.agent_port), "-m", str(len(numbers)), "-r", "20", "-l", "20",
             "-nostdin", "-trace_logs", "-log_file", str(log), "-timeout", "30", "-timeout_error"],
            cwd=self.root, capture_output=True, timeout=60)
        lines = log.read_text().splitlines() if log.exists() else []
        outcomes = [ln for ln in lines if ln.startswith(("ANSWERED", "REFUSED"))]
        assert len(outcomes) == len(numbers), (run.returncode, run.stdout[-2000:], lines,
                                               (self.root / "kamailio.log").read_text()[-3000:])
        return outcomes

    def at_carrier(self) -> Counter[str]:
        """The numbers that reached the carrier, with how many times (its log is flushed line by line)."""
        text = self.carrier_log.read_text() if self.carrier_log.exists() else ""
        return Counter(re.findall(r"^INVITE (\S+)", text, re.MULTILINE))

    def audited(self) -> list[dict[str, object]]:
        with AuditReader(self.audit) as r:
            return r.query(limit=100_000)

    def close(self) -> None:
        if self.gateway is not None:
            stop(self.gateway)
        for proc in self.procs:
            stop(proc)


def _free_udp_and_tcp_port() -> int:
    for _ in range(50):
        port = free_udp_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no port free for both UDP and TCP")


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    try:
        s.start_gateway()
        s.start_carrier()
        s.start_proxy()
        yield s
    finally:
        s.close()


def _wait_audited(stack: Stack, n: int) -> list[dict[str, object]]:
    wait_until(lambda: len(stack.audited()) >= n, f"{n} audit records", 10)
    return stack.audited()


def test_kamailio_screens_every_call_through_the_gateway(stack: Stack) -> None:
    numbers = [n for pair in zip(LISTED, UNLISTED, strict=False) for n in pair] + UNLISTED[len(LISTED):]
    outcomes = stack.call(numbers)
    answered = sorted(ln.split()[1] for ln in outcomes if ln.startswith("ANSWERED"))
    refused = {ln.split()[1]: ln.split()[2:] for ln in outcomes if ln.startswith("REFUSED")}
    assert answered == sorted(UNLISTED)
    assert refused == {n: ["603", "opposition_list"] for n in LISTED}
    # no listed number reached the carrier; every unlisted one did, exactly once
    wait_until(lambda: sum(stack.at_carrier().values()) >= len(UNLISTED), "the carrier's log", 10)
    assert stack.at_carrier() == Counter(UNLISTED)
    # every call audited once, by the SIP server, with its verdict
    rows = _wait_audited(stack, len(numbers))
    assert len(rows) == len(numbers) and {r["source"] for r in rows} == {"sip"}
    verdicts = {str(r["number"]): r["verdict"] for r in rows}
    assert verdicts == {**{"+33" + n[1:]: "BLOCK" for n in LISTED}, **{"+33" + n[1:]: "ALLOW" for n in UNLISTED}}

    # the gateway killed: no decision, no call (the proxy's failure route refuses)
    stack.kill_gateway()
    down = stack.call(UNLISTED[:3])
    assert all(ln.startswith("REFUSED") for ln in down), down
    time.sleep(0.5)
    assert stack.at_carrier() == Counter(UNLISTED)

    # restarted: calls flow again (a number called a second time is still under its attempt cap)
    stack.start_gateway()
    again = stack.call(UNLISTED[:3] + LISTED[:1])
    assert sorted(ln.split()[0] for ln in again) == ["ANSWERED"] * 3 + ["REFUSED"]
    wait_until(lambda: sum(stack.at_carrier().values()) >= len(UNLISTED) + 3, "the carrier's log", 10)
    assert stack.at_carrier() == Counter(UNLISTED) + Counter(UNLISTED[:3])
    assert len(_wait_audited(stack, len(numbers) + 4)) == len(numbers) + 4
