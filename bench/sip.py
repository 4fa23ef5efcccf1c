"""SIP redirect server benchmark: SIPp sends INVITEs at fixed rates to ``dnc-gateway serve`` ([sip]) and, in
the same run, to a bare asyncio responder that answers every INVITE with a fixed 302 without parsing more
than it must copy (the ceiling: what the loop, the socket and SIPp cost at best).

Run: ``.venv/bin/python bench/sip.py`` (rates 500 and 1000 INVITE/s, 10 s a row) or, on a shared machine,
``--rates 200,500 --duration 2`` for a smoke run. Rows:

- ``ceiling``: the bare responder;
- ``gateway, audit off``: serve with no audit log (memory state);
- ``gateway, audit on``: serve with ``[gateway] audit`` (an ALLOW answered once its record is durable).

Each row: the offered rate, the answers per second, the INVITE -> final answer time (p50, p99, max) and the
calls that got no answer. Times are read from a packet capture on ``lo`` (dumpcap, as bench/pdd.py does: the
kernel's timestamps, to the microsecond), not from SIPp, whose response times are rounded to its loop's
ticks (milliseconds). Run as root or with capture rights on ``lo``. Every INVITE dials a
different number (no attempt cap is reached) on a campaign with no hours, holidays or staleness checks, so
that every answer is a 302 whatever the hour the bench runs at.

Targets (issue 27): p99 INVITE -> 302 <= 2 ms at 1,000 INVITE/s with the audit off; saturation >= 0.5 of the
ceiling's. The generator (SIPp) and the server share the machine: on 2 cores they each get one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from pdd import capture, read_pcap  # noqa: E402 (bench/ is not a package)

SCENARIO = ROOT / "bench" / "sipp" / "redirect-uac.xml"
SERVE = "import sys; from gateway.cli import main; sys.exit(main())"

CONFIG = """
[gateway]
home_country = "FR"
professional = "bench"
state = "memory://"
{audit}

[agi]
listen = "127.0.0.1:0"

[sip]
listen = "127.0.0.1:{port}"
route = "sip:carrier@127.0.0.1:5080"

[campaigns.bench]
regime = "none"
caller_id = "0162000000"
check_hours = false
check_holidays = false
check_staleness = false
"""


_CALL_ID = re.compile(rb"\r\n(?:Call-ID|i)\s*:\s*([^\r]+)", re.IGNORECASE)


def free_udp_port(tcp_too: bool = False) -> int:
    """A free UDP port (``tcp_too``: free for TCP as well: the gateway listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not tcp_too:
            return port
        with socket.socket() as t:
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port")


# -- the ceiling ---------------------------------------------------------------------------------------------
_COPY = (b"via:", b"v:", b"from:", b"f:", b"to:", b"t:", b"call-id:", b"i:", b"cseq:")


class Responder(asyncio.DatagramProtocol):
    """A fixed 302 to every INVITE (its Via/From/To/Call-ID/CSeq copied), nothing to anything else."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.startswith(b"INVITE "):
            return
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        out = [b"SIP/2.0 302 Moved Temporarily"]
        for line in head[1:]:
            low = line[:9].lower()
            if low.startswith(_COPY):
                out.append(line + b";tag=ceiling" if low.startswith((b"to:", b"t:")) else line)
        out.append(b"Contact: <sip:0612345678@127.0.0.1:5080>\r\nContent-Length: 0\r\n\r\n")
        self.transport.sendto(b"\r\n".join(out), addr)  # type: ignore[attr-defined]


def responder(port: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(Responder, local_addr=("127.0.0.1", port))
        await asyncio.Event().wait()

    asyncio.run(main())


# -- one row -------------------------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    rate: int
    sent: int
    answered: int
    per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def wait_bound(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until something has bound UDP ``port`` (the gateway binds its SIP socket last, once it can answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on UDP {port} (exit status {proc.poll()}); see serve.log in the work "
                     "directory")


def run_sipp(name: str, port: int, rate: int, duration: float, numbers: Path, work: Path) -> Row:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp not found (Debian: apt-get install sip-tester)")
    calls = max(1, int(rate * duration))
    run_dir = Path(tempfile.mkdtemp(dir=work))
    pcap = run_dir / "sip.pcap"
    with capture(pcap, (port,), ()):
        subprocess.run(
            [sipp, f"127.0.0.1:{port}", "-sf", str(SCENARIO), "-inf", str(numbers), "-i", "127.0.0.1",
             "-p", str(free_udp_port()), "-r", str(rate), "-m", str(calls), "-l", str(max(100, rate * 5)),
             "-nostdin", "-timeout", f"{duration + 20:.0f}", "-timeout_error"],
            cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    invites: dict[bytes, float] = {}
    finals: dict[bytes, float] = {}
    for p in read_pcap(pcap):
        m = _CALL_ID.search(p.payload)
        if m is None:
            continue
        if p.dport == port and p.payload.startswith(b"INVITE "):
            invites.setdefault(m.group(1), p.t)
        elif p.sport == port and p.payload.startswith(b"SIP/2.0 ") and p.payload[8:9] in b"3456" \
                and b" INVITE\r\n" in p.payload:
            finals.setdefault(m.group(1), p.t)
    times = sorted((finals[c] - t) * 1000 for c, t in invites.items() if c in finals)
    span = (max(finals.values()) - min(invites.values())) if finals and invites else 0.0
    q = statistics.quantiles(times, n=100, method="inclusive") if len(times) >= 2 else (times or [0.0]) * 99
    return Row(name, rate, calls, len(times), len(times) / span if span > 0 else 0.0, q[49], q[98],
               times[-1] if times else 0.0)


def gateway(port: int, audit: bool, work: Path) -> subprocess.Popen[bytes]:
    d = Path(tempfile.mkdtemp(dir=work))
    conf = d / "bench.toml"
    conf.write_text(CONFIG.format(port=port, audit='audit = "audit.db"' if audit else ""))
    with (d / "serve.log").open("wb") as log:
        return subprocess.Popen([sys.executable, "-c", SERVE, "--config", str(conf), "--log-level", "WARNING",
                                 "serve", "--no-web"], cwd=d, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                stdout=log, stderr=log)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--rates", default="500,1000", help="offered INVITE/s, comma-separated (default 500,1000)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds a row (default 10)")
    ap.add_argument("--rows", default="ceiling,off,on", help="ceiling, off (audit off), on (audit on)")
    ap.add_argument("--responder", type=int, help=argparse.SUPPRESS)  # the ceiling's process
    args = ap.parse_args(argv)
    if args.responder:
        responder(args.responder)
        return 0
    rates = [int(r) for r in args.rates.split(",") if r]
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    results: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="dnc-bench-sip-") as tmp:
        work = Path(tmp)
        numbers = work / "numbers.csv"
        total = max(rates) * int(args.duration + 1) * 2
        numbers.write_text("SEQUENTIAL\n" + "".join(f"06{10_000_000 + i:08d};bench;0162000000\n"
                                                     for i in range(total)))
        for row in rows:
            port = free_udp_port(tcp_too=True)
            if row == "ceiling":
                proc = subprocess.Popen([sys.executable, __file__, "--responder", str(port)])
                name = "ceiling (bare 302)"
            else:
                proc = gateway(port, row == "on", work)
                name = f"gateway, audit {row}"
            try:
                wait_bound(port, proc)
                for rate in rates:
                    r = run_sipp(name, port, rate, args.duration, numbers, work)
                    results.append(r)
                    print(f"{r.name:<22} {r.rate:>6}/s offered  {r.per_second:>8.0f}/s answered  "
                          f"p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  max {r.max_ms:7.2f} ms  "
                          f"unanswered {r.sent - r.answered}", flush=True)
            finally:
                stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
