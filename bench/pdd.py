"""Post-dial delay against a real Asterisk (issue 16 #4): what the screening adds between the agent and the carrier.

Run (as root, or with capture rights on ``lo`` for dumpcap)::

    PYTHONPATH=$PWD .venv/bin/python bench/pdd.py --asterisk /opt/asterisk/sbin/asterisk

Post-dial delay here = the agent's authenticated INVITE (CSeq 2, after the 401 challenge, which does not depend
on the screening) leaving the agent, to the INVITE Asterisk sends the carrier for that number. Both times are the
kernel's, from one packet capture on the loopback interface (dumpcap, classic pcap, µs): on ``lo`` a packet is
captured when it is sent, so neither SIPp's scheduling nor its logging is in the figure.

One Asterisk runs asterisk-config/ as shipped (tests/e2e/pbx.py: the README's edits only), with four ways
through the same dialplan, in the same run:

- ``a`` no AGI line: [dnc-outbound] and [dnc-screen] copied with the gateway's ``AGI()`` line replaced by an
  ``MSet`` of what it would have set: the floor of Asterisk itself;
- ``b`` the same copy, ``AGI()`` to a bare FastAGI server written here (asyncio + uvloop, like the gateway) that
  reads the environment block and answers the gateway's four variables in one ``EXEC MSet`` at once: the floor
  of AGI itself (a TCP connection, Asterisk writing the environment line by line, one round trip, the close);
- ``c`` the shipped [dnc-outbound] itself, dialled as any agent dials, ``AGI()`` to ``dnc-gateway serve``
  with the production defaults: durable audit on (an ALLOW is answered once its record is on disk), embedded
  state (``sqlite://``), INFO logging, a 1M-number opposition list;
- ``d`` (diagnostic) a copy as in b, ``AGI()`` to a second gateway identical to c but for
  ``[audit] durable_allow = false``: how much of c's time is the wait for the audit's sync.

Each call's FastAGI connection is in the capture too, so its delay splits into spans (Asterisk up to the
connect, the environment block, the server's think time, the answer's round trip, the close, Asterisk up to the
carrier's INVITE): where the time goes, per variant, and in the slowest 1 % of calls. ``--strace`` runs gateway
c under ``strace --seccomp-bpf -T`` to time its fdatasync calls (a profile: it slows c a little).

The agent is SIPp (tests/e2e/sipp/agent.xml, agent2's digest credentials) calling distinct 076 numbers (none
listed, so every call is allowed and reaches the carrier); the carrier is SIPp answering 486 at once
(bench/sipp/carrier-busy.xml), so calls end quickly. Variants are interleaved in short rounds (each round
one variant at the offered rate, the order rotated each round) so that whatever else loads the machine
loads all four alike. Asterisk's, the AGI servers' and the whole machine's CPU are read from /proc per round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.agi.session import answer_commands
from gateway.config import Answer
from gateway.service import new_decision_id
from tests.e2e.pbx import (
    ROOT,
    SERVE,
    SIPP_DIR,
    Asterisk,
    asterisk_config,
    context,
    edit,
    free_tcp_port,
    free_udp_port,
    listening,
    stop,
    wait_until,
)

BENCH_SIPP = Path(__file__).resolve().parent / "sipp"
VARIANTS = ("a", "b", "c", "d")
LABELS = {
    "a": "no AGI line (Asterisk's floor)",
    "b": "bare FastAGI server (AGI's floor)",
    "c": "dnc-gateway serve (durable audit, embedded state)",
    "d": "dnc-gateway serve, audit not awaited (durable_allow = false; diagnostic)",
}
PREFIX = {"a": "91", "b": "92", "c": "", "d": "93"}  # what the agent dials before the number; c: the shipped route
AGENT, AGENT_SECRET = "agent2", "change-me-agent2"  # pjsip.conf as shipped: agent2 is on campaign "legacy"
REGISTRY_SIZE = 1_000_000
TOKEN = "bench-token"
AGI_LINE = "AGI(agi://${DNC_GW_A}/check,${ARG1},${ARG2},${ARG3})"
# What the AGI line would have set, set by the dialplan instead (variant a).
NO_AGI = "MSet(AGISTATUS=SUCCESS,DNC_REASON=,DNC_DECISION_ID=0,DNC_WOULD_BLOCK=0,DNC_VERDICT=ALLOW)"

GATEWAY_TOML = """
[gateway]
home_country = "FR"
professional = "bench"
state = "sqlite://state.db"
audit = "audit.db"
timezone = "Europe/Paris"

[agi]
listen = "127.0.0.1:4573"
allow = ["127.0.0.0/8"]

[web]
listen = "127.0.0.1:8080"
admin_token = "{token}"

[lists.bloctel]
kind = "opposition"
path = "bloctel.txt"
as_of = "{today}"
max_age_days = 30

# agent2's campaign in asterisk-config/pjsip.conf. Hours and holidays off: the bench runs at any hour, and a
# call outside them would be refused before reaching the carrier (the rules are still evaluated otherwise).
[campaigns.legacy]
regime = "opposition"
lists = ["bloctel"]
caller_id = "0162000000"
check_hours = false
check_holidays = false
"""


# -- the bare FastAGI server (variant b) ----------------------------------------------------------------------------
class _Bare(asyncio.Protocol):
    """Read the environment block, answer the gateway's four variables in one EXEC MSet, close on the reply."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transport is not an asyncio.Transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if not self.answered:
            if b"\n\n" in self.buf:
                self.answered, self.buf = True, b""
                sets = (("DNC_REASON", ""), ("DNC_DECISION_ID", new_decision_id(datetime.now(UTC))),
                        ("DNC_WOULD_BLOCK", "0"), ("DNC_VERDICT", "ALLOW"))
                self.transport.write(answer_commands(sets, Answer.MSET)[0])
        elif b"\n" in self.buf:  # "200 result=0": done
            self.transport.close()


def serve_bare(port: int) -> None:
    with contextlib.suppress(ImportError):
        import uvloop  # optional, as in the gateway (gateway/app.py)

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Bare, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# -- the stack --------------------------------------------------------------------------------------------------------
def bench_dialplan(agi_ports: dict[str, int]) -> str:
    """Contexts a, b and d: copies of the shipped [dnc-outbound] and [dnc-screen], entered by a dialled prefix
    (``agi_ports``: b's and d's FastAGI ports)."""
    shipped = (ROOT / "asterisk-config" / "extensions.conf").read_text()
    outbound, screen = context(shipped, "dnc-outbound"), context(shipped, "dnc-screen")
    out = ["\n; bench/pdd.py: the same screening without the AGI line (a), against a bare FastAGI server (b), and"
           " against a gateway whose audit is not awaited (d)\n"]
    copies = ("a", "b", "d")
    for v in copies:
        o = edit(outbound, "[dnc-outbound]", f"[bench-{v}-outbound]")
        out.append(edit(o, "Gosub(dnc-screen,", f"Gosub(bench-{v}-screen,"))
        s = edit(screen, "[dnc-screen]", f"[bench-{v}-screen]")
        if v == "a":
            s = edit(s, AGI_LINE, NO_AGI)
        else:
            addr = f"127.0.0.1:{agi_ports[v]}"
            s = edit(edit(s, "${DNC_GW_A}", addr), "${DNC_GW_B}", addr)
        out.append(s)
    out.append("[agents](+)\n" + "".join(
        f"exten => _{PREFIX[v]}0XXXXXXXXX,1,Goto(bench-{v}-outbound,${{EXTEN:2}},1)\n" for v in copies))
    return "\n".join(out)


def write_gateway(root: Path, durable: bool = True) -> Path:
    root.mkdir(parents=True)
    rnd = random.Random(16)
    with (root / "bloctel.txt").open("w") as f:  # French mobiles starting 06: the bench dials 076 numbers only
        f.write("".join(f"06{rnd.randrange(10**8):08d}\n" for _ in range(REGISTRY_SIZE)))
    conf = root / "gateway.toml"
    conf.write_text(GATEWAY_TOML.format(token=TOKEN, today=date.today().isoformat())
                    + ("" if durable else "\n[audit]\ndurable_allow = false\n"))
    return conf


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (/proc/stat)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = v[3] + v[4]
    total = sum(v[:8])
    return (total - idle) / os.sysconf("SC_CLK_TCK"), total / os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    rate: int
    variant: str
    numbers: list[str]
    seconds: float = 0.0
    failed: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # process name -> CPU seconds during the round
    machine_busy: float = 0.0  # share of the machine's CPU busy during the round, all processes (0..1)


class Bench:
    def __init__(self, asterisk: str, sipp: str, work: Path, strace: bool = False) -> None:
        self.asterisk_bin, self.sipp, self.work = asterisk, sipp, work
        self.strace = strace  # run gateway c under strace, timing its fdatasync calls (a profile, not a headline)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pbx: Asterisk | None = None
        self.next_number = 0
        self.sip_port, self.trunk_port = free_udp_port(), free_udp_port()
        self.pids: dict[str, int] = {}
        self.agi_ports: dict[str, int] = {}  # "b", "c" -> the FastAGI port Asterisk calls
        self.calls = dict.fromkeys(VARIANTS, 0)  # calls made, warm-up included

    def _spawn(self, name: str, args: list[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
        with (self.work / f"{name}.log").open("wb") as log:
            p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                 env=dict(os.environ, PYTHONPATH=str(ROOT)))
        self.procs.append(p)
        return p

    def start(self) -> None:
        agi, web, bare, ami = free_tcp_port(), free_tcp_port(), free_tcp_port(), free_tcp_port()
        agi_d, web_d = free_tcp_port(), free_tcp_port()
        gws = []
        for name, durable, a, w in (("gateway", True, agi, web), ("gateway-d", False, agi_d, web_d)):
            conf = write_gateway(self.work / name, durable)
            cmd = [sys.executable, "-c", SERVE, "--config", str(conf), "serve", "--agi-listen", f"127.0.0.1:{a}",
                   "--web-listen", f"127.0.0.1:{w}"]
            if self.strace and durable:
                # seccomp-bpf: only the traced calls stop the process, the others run at full speed.
                cmd = ["strace", "-f", "--seccomp-bpf", "-e", "trace=fdatasync,fsync", "-T", "-y", "-o",
                       str(self.work / "gateway.strace"), *cmd]
            gws.append(self._spawn(name, cmd, cwd=self.work / name))
        gw, gw_d = gws
        b = self._spawn("bare-agi", [sys.executable, __file__, "--bare-agi", str(bare)])
        self._spawn("carrier", [self.sipp, "-sf", str(BENCH_SIPP / "carrier-busy.xml"), "-i", "127.0.0.2", "-p",
                                str(self.trunk_port), "-nostdin"], cwd=self.work)
        for name, port, p in (("gateway", web, gw), ("gateway", agi, gw), ("gateway-d", agi_d, gw_d),
                              ("bare FastAGI server", bare, b)):
            def up(p: subprocess.Popen[bytes] = p, port: int = port, name: str = name) -> bool:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited: see {self.work}")
                return listening(port)
            wait_until(up, f"{name} to listen", 60)
        conf_ast = asterisk_config(self.work / "asterisk", self.sip_port, self.trunk_port, ami, agi, agi,
                                   bench_dialplan({"b": bare, "d": agi_d}))
        self.pbx = Asterisk(self.asterisk_bin, conf_ast, self.work)
        self.pbx.wait_booted()
        gw_pid = gw.pid
        if self.strace:  # the gateway is strace's child
            gw_pid = int(Path(f"/proc/{gw.pid}/task/{gw.pid}/children").read_text().split()[0])
        self.pids = {"asterisk": self.pbx.proc.pid, "gateway": gw_pid, "gateway-d": gw_d.pid, "bare": b.pid}
        self.agi_ports = {"b": bare, "c": agi, "d": agi_d}

    def close(self) -> None:
        if self.pbx is not None:
            self.pbx.stop()
        if self.strace and "gateway" in self.pids:
            # strace detaches from its child when stopped: end the gateway itself, and strace exits with it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pids["gateway"], signal.SIGTERM)
        for p in reversed(self.procs):
            stop(p)

    def round(self, variant: str, rate: int, seconds: float) -> Round:
        n = max(1, round(rate * seconds))
        numbers = [f"076{self.next_number + i:07d}" for i in range(n)]  # valid, never listed
        self.next_number += n
        self.calls[variant] += n
        r = Round(rate, variant, numbers)
        d = self.work / f"round-{self.next_number}"
        d.mkdir()
        (d / "calls.csv").write_text("SEQUENTIAL\n" + "".join(f"{PREFIX[variant]}{x};{AGENT};\n" for x in numbers))
        cpu0 = {k: cpu_seconds(pid) for k, pid in self.pids.items()}
        m0 = machine_busy()
        t0 = time.monotonic()
        out = subprocess.run(
            [self.sipp, f"127.0.0.1:{self.sip_port}", "-sf", str(SIPP_DIR / "agent.xml"), "-inf",
             str(d / "calls.csv"), "-au", AGENT, "-ap", AGENT_SECRET, "-i", "127.0.0.1", "-p", str(free_udp_port()),
             "-m", str(n), "-r", str(rate), "-l", "5000", "-nostdin", "-timeout", "120s"],
            cwd=d, capture_output=True, text=True, timeout=300)
        r.seconds = time.monotonic() - t0
        m1 = machine_busy()
        r.cpu = {k: cpu_seconds(pid) - cpu0[k] for k, pid in self.pids.items()}
        r.machine_busy = (m1[0] - m0[0]) / max(m1[1] - m0[1], 1e-9)
        if out.returncode not in (0, 1):
            raise RuntimeError(f"sipp agent failed ({out.returncode}): {out.stdout[-1500:]}{out.stderr[-1500:]}")
        failed = re.search(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", out.stdout)
        r.failed = int(failed.group(1)) if failed else 0
        return r


# -- the capture ------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def capture(path: Path, udp: tuple[int, ...], tcp: tuple[int, ...]) -> Iterator[None]:
    dumpcap = shutil.which("dumpcap")
    if dumpcap is None:
        raise SystemExit("dumpcap (wireshark-common) is needed: the delays are read from a capture on lo")
    err = path.with_suffix(".err")
    with err.open("wb") as e:
        p = subprocess.Popen([dumpcap, "-i", "lo", "-P", "-B", "64", "-f",
                              " or ".join([f"udp port {p}" for p in udp] + [f"tcp port {p}" for p in tcp]),
                              "-w", str(path)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=e)
    try:
        def started() -> bool:
            if p.poll() is not None:
                raise RuntimeError(f"dumpcap: {err.read_text()}")
            return "Capturing on" in err.read_text(errors="replace")

        wait_until(started, "dumpcap to start", 15)
        yield
    finally:
        time.sleep(0.3)  # the last packets
        stop(p, signal.SIGINT)
    if "Packets captured" in (t := err.read_text(errors="replace")) and "dropped" in t:
        m = re.search(r"Packets received/dropped on interface '[^']*': \d+/(\d+)", t)
        if m and int(m.group(1)):
            print(f"warning: dumpcap dropped {m.group(1)} packets", file=sys.stderr)


@dataclass(frozen=True, slots=True)
class Packet:
    t: float
    tcp: bool
    sport: int
    dport: int
    flags: int  # TCP flags (0 for UDP)
    payload: bytes


SYN, FIN = 0x02, 0x01


def read_pcap(path: Path) -> Iterator[Packet]:
    """The IPv4 UDP and TCP packets of a classic pcap file, with the kernel's capture time."""
    data = path.read_bytes()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        end, scale = "<", 1e-6
    elif magic == b"\x4d\x3c\xb2\xa1":
        end, scale = "<", 1e-9
    elif magic == b"\xa1\xb2\xc3\xd4":
        end, scale = ">", 1e-6
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    link = {1: 14, 113: 16, 0: 4}.get(linktype)  # Ethernet (what lo gives), Linux cooked, BSD loopback
    if link is None:
        raise ValueError(f"{path}: link type {linktype}")
    rec = struct.Struct(end + "IIII")
    i = 24
    while i + 16 <= len(data):
        sec, frac, incl, _ = rec.unpack_from(data, i)
        ip = data[i + 16 + link:i + 16 + incl]
        i += 16 + incl
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] not in (6, 17):
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        sport, dport = struct.unpack_from("!HH", ip, ihl)
        if ip[9] == 17:
            yield Packet(sec + frac * scale, False, sport, dport, 0, ip[ihl + 8:total])
        else:
            off = (ip[ihl + 12] >> 4) * 4
            yield Packet(sec + frac * scale, True, sport, dport, ip[ihl + 13], ip[ihl + off:total])


_INVITE = re.compile(rb"INVITE sip:([^@;>\s]+)@")
_CSEQ2 = re.compile(rb"\nCSeq:\s*2 INVITE", re.I)
_ARG1 = re.compile(rb"\nagi_arg_1: (\S+)\n")

# The steps of one call on the wire, in order (variant a has no AGI connection: only the first and last times).
STEPS = ("invite", "syn", "env", "answer", "reply", "close", "carrier")
SPANS = {  # span name -> (from step, to step)
    "Asterisk: INVITE to AGI connect": ("invite", "syn"),
    "Asterisk: connect + environment block": ("syn", "env"),
    "server: environment to answer": ("env", "answer"),
    "Asterisk: answer to its reply": ("answer", "reply"),
    "server: reply to close": ("reply", "close"),
    "Asterisk: close to carrier INVITE": ("close", "carrier"),
}


@dataclass
class _Agi:
    t: dict[str, float] = field(default_factory=dict)
    env: bytes = b""
    number: str = ""


def timelines(pcap: Path, sip_port: int, trunk_port: int, agi_ports: set[int]) -> dict[str, dict[str, float]]:
    """Dialled string -> the times of its steps (STEPS): the agent's CSeq 2 INVITE, the FastAGI connection's
    SYN, end of environment block, the server's answer, Asterisk's reply, the server's FIN, the carrier's INVITE."""
    sent: dict[str, float] = {}
    reached: dict[str, float] = {}
    open_: dict[int, _Agi] = {}  # Asterisk's port -> the connection in progress
    agi: dict[str, dict[str, float]] = {}  # number -> its AGI connection's times
    for p in read_pcap(pcap):
        if p.tcp:
            if p.dport in agi_ports:  # Asterisk -> server
                if p.flags & SYN:
                    open_[p.sport] = _Agi({"syn": p.t})
                elif (c := open_.get(p.sport)) is not None and p.payload:
                    if "env" not in c.t:
                        c.env += p.payload
                        if b"\n\n" in c.env:
                            c.t["env"] = p.t
                            m = _ARG1.search(c.env)
                            c.number = m.group(1).decode() if m else ""
                    elif "answer" in c.t and "reply" not in c.t:
                        c.t["reply"] = p.t
            elif p.sport in agi_ports and (c := open_.get(p.dport)) is not None:  # server -> Asterisk
                if p.payload and "answer" not in c.t and "env" in c.t:
                    c.t["answer"] = p.t
                if p.flags & FIN and "close" not in c.t:
                    c.t["close"] = p.t
                    if c.number:
                        agi.setdefault(c.number, c.t)
            continue
        m = _INVITE.match(p.payload)
        if m is None:
            continue
        user = m.group(1).decode()
        if p.dport == sip_port and _CSEQ2.search(p.payload):
            sent.setdefault(user, p.t)
        elif p.dport == trunk_port:
            reached.setdefault(user, p.t)
    out = {}
    for dialled, t in sent.items():
        number = dialled[-10:]
        if number in reached:
            out[dialled] = {"invite": t, **agi.get(number, {}), "carrier": reached[number]}
    return out


# -- the report -------------------------------------------------------------------------------------------------------
def pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def report(rounds: list[Round], lines: dict[str, dict[str, float]], meta: dict[str, Any]) -> dict[str, Any]:
    pdd = {k: t["carrier"] - t["invite"] for k, t in lines.items()}
    rows = []
    for rate in sorted({r.rate for r in rounds}):
        for v in VARIANTS:
            rs = [r for r in rounds if r.rate == rate and r.variant == v]
            calls = [x for r in rs for x in r.numbers]
            got = [pdd[PREFIX[v] + x] * 1000 for x in calls if PREFIX[v] + x in pdd]
            n = len(calls)
            per_round = [pr for r in rs
                         if (pr := [pdd[PREFIX[v] + x] * 1000 for x in r.numbers if PREFIX[v] + x in pdd])]
            server = {"a": None, "b": "bare", "c": "gateway", "d": "gateway-d"}[v]
            rows.append({
                "rate": rate, "variant": v, "label": LABELS[v], "calls": n, "measured": len(got),
                "failed": sum(r.failed for r in rs),
                "p50_ms": pct(got, 50) if got else None, "p90_ms": pct(got, 90) if got else None,
                "p99_ms": pct(got, 99) if got else None, "max_ms": max(got) if got else None,
                # Per round, in the order run: the rounds of the variants alternate, so round i of c and of b
                # ran seconds apart, under the same load (a stall of the machine shows in one round, not all).
                "round_p50_ms": [pct(pr, 50) for pr in per_round],
                "round_p99_ms": [pct(pr, 99) for pr in per_round],
                "asterisk_cpu_us": sum(r.cpu["asterisk"] for r in rs) / n * 1e6,
                "server_cpu_us": sum(r.cpu[server] for r in rs) / n * 1e6 if server else None,
                "machine_busy": sum(r.machine_busy * r.seconds for r in rs) / sum(r.seconds for r in rs),
                "spans": spans([lines[PREFIX[v] + x] for x in calls if PREFIX[v] + x in lines]) if v != "a" else {},
            })
    return {**meta, "rows": rows}


def spans(calls: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each span's p50 and p99 (ms) over the calls with a complete AGI timeline, and its mean over the slowest 1 %
    of those calls (by whole post-dial delay): where the tail's time goes."""
    whole = [c for c in calls if all(s in c for s in STEPS)]
    if not whole:
        return {}
    whole.sort(key=lambda c: c["carrier"] - c["invite"])
    tail = whole[-max(1, len(whole) // 100):]
    out = {}
    for name, (a, b) in SPANS.items():
        xs = [(c[b] - c[a]) * 1000 for c in whole]
        out[name] = {"p50": pct(xs, 50), "p99": pct(xs, 99),
                     "slowest_1pct_mean": sum((c[b] - c[a]) * 1000 for c in tail) / len(tail)}
    out["whole post-dial delay"] = {"p50": pct([(c["carrier"] - c["invite"]) * 1000 for c in whole], 50),
                                    "p99": pct([(c["carrier"] - c["invite"]) * 1000 for c in whole], 99),
                                    "slowest_1pct_mean": sum((c["carrier"] - c["invite"]) * 1000 for c in tail)
                                    / len(tail)}
    return out


def fdatasync_profile(trace: Path, calls: int) -> dict[str, dict[str, float]]:
    """File -> its fdatasync/fsync calls' durations (ms) from ``strace -T -y`` output, over the whole run
    (``calls``: gateway c's calls, warm-up included)."""
    by: dict[str, list[float]] = {}
    for m in re.finditer(r"f(?:data)?sync\(\d+<([^>]*)>\)\s*= 0 <([\d.]+)>", trace.read_text()):
        by.setdefault(Path(m.group(1)).name, []).append(float(m.group(2)) * 1000)
    return {f: {"count": len(xs), "per_call": len(xs) / max(calls, 1), "p50": pct(xs, 50), "p90": pct(xs, 90),
                "p99": pct(xs, 99), "max": max(xs)} for f, xs in by.items()}


def print_report(res: dict[str, Any]) -> None:
    rows: list[dict[str, Any]] = res["rows"]
    print(f"\n{res['asterisk']}, {res['cpus']} CPUs, {res['python']}, {res['when']}; load average before "
          f"{res['load_before']}, after {res['load_after']}")
    print("\n| offered | variant | calls | measured | p50 ms | p99 ms | Asterisk CPU µs/call | AGI server CPU µs/call "
          "| machine busy |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")

    def ms(x: float | None) -> str:
        return "–" if x is None else f"{x:.2f}"

    for r in rows:
        server = "–" if r["server_cpu_us"] is None else f"{r['server_cpu_us']:.0f}"
        print(f"| {r['rate']}/s | {r['variant']}: {r['label']} | {r['calls']} | {r['measured']} | {ms(r['p50_ms'])} "
              f"| {ms(r['p99_ms'])} | {r['asterisk_cpu_us']:.0f} | {server} | {r['machine_busy']:.0%} |")
    pairs = (("c", "b"), ("b", "a"), ("c", "a"), ("c", "d"))
    print("\n| offered | " + " | ".join(f"{x} − {y} p50 ms | {x} − {y} p99 ms" for x, y in pairs)
          + " | c − b p99, median of rounds | c − b p50, per round | c − b p99, per round |")
    print("|---|" + "---:|---:|" * len(pairs) + "---:|---|---|")
    for rate in sorted({int(r["rate"]) for r in rows}):
        by = {r["variant"]: r for r in rows if r["rate"] == rate}
        if any(by[v]["p50_ms"] is None for v in VARIANTS):
            print(f"| {rate}/s | a variant has no measured call: see the logs in {res['work']} |")
            continue
        cells = [f"{by[x][k] - by[y][k]:+.2f}" for x, y in pairs for k in ("p50_ms", "p99_ms")]
        p50s = [c - b for c, b in zip(by["c"]["round_p50_ms"], by["b"]["round_p50_ms"], strict=False)]
        p99s = [c - b for c, b in zip(by["c"]["round_p99_ms"], by["b"]["round_p99_ms"], strict=False)]
        print(f"| {rate}/s | " + " | ".join(cells) + f" | {statistics.median(p99s):+.2f} "
              f"| {' '.join(f'{x:+.2f}' for x in p50s)} | {' '.join(f'{x:+.2f}' for x in p99s)} |")
    if res.get("fdatasync"):
        print("\nGateway c's syncs (strace -T, whole run, warm-up included):")
        for name, fd in res["fdatasync"].items():
            print(f"- {name}: {fd['count']:.0f} ({fd['per_call']:.2f} per call), p50 {fd['p50']:.3f} ms, "
                  f"p90 {fd['p90']:.3f}, p99 {fd['p99']:.3f}, max {fd['max']:.3f}")
    print("\nWhere the time goes, from the same capture (FastAGI connections on lo): p50 / p99 of each span, and its "
          "mean over the slowest 1 % of calls, ms")
    with_spans = [r for r in rows if r["spans"]]
    print("\n| span | " + " | ".join(f"{r['variant']} {r['rate']}/s" for r in with_spans) + " |")
    print("|---|" + "---:|" * len(with_spans))
    for name in [*SPANS, "whole post-dial delay"]:
        print(f"| {name} | " + " | ".join(
            f"{c['p50']:.2f} / {c['p99']:.2f} / {c['slowest_1pct_mean']:.2f}" for c in
            (r["spans"][name] for r in with_spans)) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--asterisk", default=os.environ.get("DNC_ASTERISK") or shutil.which("asterisk"))
    ap.add_argument("--rates", default="50,200", help="offered calls/s, comma-separated")
    ap.add_argument("--rounds", type=int, default=6, help="rounds of each variant at each rate")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of a round")
    ap.add_argument("--json", type=Path, help="write the results there too")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it (logs, capture)")
    ap.add_argument("--strace", action="store_true",
                    help="profile: time gateway c's fdatasync calls with strace (slows c a little)")
    ap.add_argument("--bare-agi", type=int, help=argparse.SUPPRESS)  # the bare FastAGI server's process
    args = ap.parse_args()
    if args.bare_agi:
        serve_bare(args.bare_agi)
        return 0
    sipp = shutil.which("sipp")
    if not args.asterisk or not sipp:
        raise SystemExit("needs a real Asterisk (--asterisk or DNC_ASTERISK) and sipp")
    rates = [int(x) for x in args.rates.split(",")]
    work = args.keep or Path(tempfile.mkdtemp(prefix="pdd-"))
    work.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([args.asterisk, "-V"], capture_output=True, text=True).stdout.strip()
    bench = Bench(args.asterisk, sipp, work, args.strace)
    pcap = work / "capture.pcap"
    rounds: list[Round] = []
    load_before = os.getloadavg()
    try:
        bench.start()
        with capture(pcap, (bench.sip_port, bench.trunk_port), tuple(bench.agi_ports.values())):
            for v in VARIANTS:  # warm-up, not counted: connections, caches, the databases' first pages
                bench.round(v, min(rates), 1.0)
            for rate in rates:
                for i in range(args.rounds):
                    k = i % len(VARIANTS)
                    for v in VARIANTS[k:] + VARIANTS[:k]:
                        r = bench.round(v, rate, args.seconds)
                        rounds.append(r)
                        print(f"{rate}/s {v}: {len(r.numbers)} calls in {r.seconds:.1f} s, {r.failed} failed, "
                              f"machine {r.machine_busy:.0%} busy", file=sys.stderr, flush=True)
    finally:
        bench.close()
    lines = timelines(pcap, bench.sip_port, bench.trunk_port, set(bench.agi_ports.values()))
    res = report(rounds, lines, {
        "asterisk": version, "cpus": os.cpu_count(), "python": platform.python_version(),
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "seconds": args.seconds, "rounds": args.rounds,
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()), "work": str(work)})
    if args.strace:
        res["fdatasync"] = fdatasync_profile(work / "gateway.strace", bench.calls["c"])
    print_report(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
