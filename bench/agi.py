"""FastAGI benchmark (issue 3): whole sessions per second and their p50/p99, 15M-number registry.

Run: ``.venv/bin/python bench/agi.py`` (3 s a row) or ``--quick`` (1 s a row).

Rows, each at offered loads of 1 000 and 5 000 calls/s (open loop) and at saturation (closed loop):

- ``ceiling``: a bare asyncio server that reads the env block and gives a fixed answer without deciding
  anything: what the loop, the sockets and the protocol cost at best;
- ``dnc-gateway``: :class:`gateway.agi.server.AgiServer` with a full ``Gateway.check`` (normalise, history,
  decide, count the attempt) against the registry;
- ``panoramisk``: panoramisk 1.4's ``fast_agi.Application`` doing the same ``Gateway.check``;
- ``ceiling + decision``: the ceiling that also parses the env block and runs the same decision, with no session
  layer at all: how far any server around this decision could go on this loop.

Each of the three answers both ways: one ``EXEC MSet`` of the four variables (``[agi] answer = "mset"``,
the default) and four ``SET VARIABLE`` round trips (``"set_variable"``, one at a time, as Asterisk
requires). A session is timed by the client from ``connect()`` to the server's close.

``--line-writes``: the generator writes the env block one line per write, as Asterisk 23 does (see
tests/fixtures/asterisk-23.4.1/fastagi-gateway-sessions.txt), instead of in one write. On loopback every line
is then a TCP segment of its own: a server that reads as soon as a line arrives (the ceiling) pays a read per
line, and the generator pays a write per line. The load generator plays
Asterisk in its own process (multiprocessing, spawn) so that it does not share the server's event loop;
both use uvloop when installed. On a 2-core machine the generator and the server each have one core.

To add rows (audit on/off, Redis state), call :func:`run_row` with another ``make_gateway``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import multiprocessing as mp
import os
import platform
import pstats
import random
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.agi import routes
from gateway.agi.protocol import mset, parse_env, set_variable
from gateway.agi.server import AgiServer
from gateway.agi.session import answer_commands
from gateway.callcheck import CallCheck
from gateway.config import Config, parse
from gateway.registry.model import ListKind, ListMeta, RegistryList
from gateway.service import Gateway
from gateway.state.model import Retention

# What the gateway derives from the French defaults (30-day window, 60-day cooldown), each plus a day.
RETENTION = Retention(timedelta(days=31), timedelta(days=61))

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # a Tuesday, 10:30 in Paris: every rule is evaluated
REGISTRY_SIZE = 15_000_000
BASE_KEY = 33_600_045_056  # +33 6 00 04 50 56: the first key of a 65536-aligned block of French mobiles
HOST = "127.0.0.1"
SET_COMMANDS = 4  # DNC_REASON, DNC_DECISION_ID, DNC_WOULD_BLOCK, DNC_VERDICT
ANSWERS = (1, SET_COMMANDS)  # a complete answer: one EXEC MSet ([agi] answer = "mset") or four SET VARIABLEs

BENCH_TOML = """
[gateway]
home_country = "FR"
professional = "bench"
state = "memory://"

[agi]
listen = "127.0.0.1:0"
allow = ["127.0.0.0/8"]
max_sessions = 20000
read_timeout = 5.0

[lists.bloctel]
kind = "opposition"
path = "bloctel.txt"
as_of = "{as_of}"
max_age_days = 30

[campaigns.bench]
regime = "opposition"
lists = ["bloctel"]
caller_id = "0162000000"
"""


# -- the registry ----------------------------------------------------------------------------------------------

def random_registry(size: int = REGISTRY_SIZE, seed: int | None = None) -> RegistryList:
    """``size`` random French mobile numbers (06/07) as a roaring bitmap, built in well under a second.

    Instead of inserting ``size`` random keys one by one (seconds), the bitmap is written directly in the
    roaring portable format: ``size`` / 8 keys per 65536-key container on average, so every container is a
    dense bitset, and a bitset whose bits are each set with probability 1/8 is three random byte strings
    ANDed together.
    """
    rnd = random.Random(seed).randbytes if seed is not None else os.urandom
    containers = -(-size * 8 // 65536)
    nbytes = containers * 8192
    bits = (int.from_bytes(rnd(nbytes)) & int.from_bytes(rnd(nbytes)) & int.from_bytes(rnd(nbytes))) \
        .to_bytes(nbytes)
    high, low = divmod(BASE_KEY, 1 << 32)
    first = low >> 16
    cards = [int.from_bytes(bits[i * 8192:(i + 1) * 8192]).bit_count() for i in range(containers)]
    # CRoaring portable format, no run containers: cookie, count, (key, cardinality - 1)*, offsets*, bitsets*.
    head = struct.pack("<II", 12346, containers)
    head += b"".join(struct.pack("<HH", first + i, c - 1) for i, c in enumerate(cards))
    start = len(head) + 4 * containers
    head += b"".join(struct.pack("<I", start + 8192 * i) for i in range(containers))
    from pyroaring import FrozenBitMap64

    members = FrozenBitMap64.deserialize(struct.pack("<QI", 1, high) + head + bits)
    meta = ListMeta("bloctel", ListKind.OPPOSITION, "bench:random", (NOW - timedelta(days=1)).date(),
                    len(members), "bench", 30)
    return RegistryList(meta, members)


def bench_config(tmp: Path) -> Config:
    (tmp / "bloctel.txt").write_text("")
    text = BENCH_TOML.format(as_of=(NOW - timedelta(days=1)).date().isoformat())
    return parse(text, str(tmp / "bench.toml"), base=tmp)


def embedded_gateway(registry: RegistryList, answer: str = "mset") -> Callable[[], Awaitable[Gateway]]:
    """``make_gateway`` for :func:`run_row`: embedded in-memory state, no audit."""
    async def make() -> Gateway:
        tmp = Path(tempfile.mkdtemp(prefix="dnc-bench-"))
        config = bench_config(tmp)
        config = dataclasses.replace(config, agi=dataclasses.replace(config.agi, answer=answer))
        gw = Gateway(config, clock=lambda: NOW)
        await gw.start()
        gw.holder.install(registry)
        return gw
    return make


# -- the load generator (its own process) ------------------------------------------------------------------------

def env_blocks(n: int, seed: int = 5) -> list[bytes]:
    """Env blocks as Asterisk 23 writes them, for random French mobile numbers (about 1 in 8 listed)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        number = "0" + str(BASE_KEY - 33_000_000_000 + rng.randrange(size_span()))
        out.append((
            "agi_network: yes\nagi_network_script: check\nagi_request: agi://127.0.0.1:4573/check\n"
            f"agi_channel: PJSIP/agent-{i:08x}\nagi_language: en\nagi_type: PJSIP\n"
            f"agi_uniqueid: 1795418477.{i}\nagi_version: 23.4.1\nagi_callerid: agent\nagi_calleridname: Agent\n"
            "agi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\n"
            f"agi_dnid: {number}\nagi_rdnis: unknown\nagi_context: outbound\nagi_extension: {number}\n"
            "agi_priority: 1\nagi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 140618572904128\n"
            f"agi_arg_1: {number}\nagi_arg_2: bench\n\n").encode())
    return out


def size_span() -> int:
    return -(-REGISTRY_SIZE * 8 // 65536) * 65536


class _Asterisk(asyncio.Protocol):
    """Asterisk's side of one session: send the env block, answer each command line, time until close."""

    def __init__(self, env: list[bytes], done: Callable[[float, bool], None]) -> None:
        self.env = env  # what to write, write by write
        self.done = done
        self.started = time.perf_counter()
        self.buf = b""
        self.commands = 0
        self.failed = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        for chunk in self.env:
            self.transport.write(chunk)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (i := self.buf.find(b"\n")) >= 0:
            line, self.buf = self.buf[:i], self.buf[i + 1:]
            if line[:7].lower() == b"failure":
                self.failed = True
                continue
            self.commands += 1
            assert self.transport is not None
            # What res_agi.c answers: EXEC gives the application's result (MSet: 0), SET VARIABLE 1.
            self.transport.write(b"200 result=0\n" if line[:5] == b"EXEC " else b"200 result=1\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.done(time.perf_counter() - self.started, not self.failed and self.commands in ANSWERS)


@dataclasses.dataclass
class Load:
    rate: float | None  # calls/s offered; None: saturation (closed loop)
    seconds: float
    concurrency: int = 64  # closed loop: sessions kept in flight
    max_in_flight: int = 8000  # open loop: beyond this, a call counts as dropped (the server is drowning)
    # Write the env block one line per write, as Asterisk does (ast_agi_send); else in one write.
    line_writes: bool = False


async def _generate(port: int, load: Load, envs: list[list[bytes]]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    dropped = 0
    in_flight = 0
    idle = asyncio.Event()
    counter = 0

    def done(seconds: float, ok: bool) -> None:
        nonlocal in_flight, errors
        in_flight -= 1
        if ok:
            latencies.append(seconds)
        else:
            errors += 1
        if in_flight == 0:
            idle.set()

    async def one() -> None:
        nonlocal counter, in_flight, errors
        env = envs[counter % len(envs)]
        counter += 1
        in_flight += 1
        idle.clear()
        fut: asyncio.Future[None] = loop.create_future()

        def finished(seconds: float, ok: bool) -> None:
            done(seconds, ok)
            if not fut.done():
                fut.set_result(None)

        try:
            await loop.create_connection(lambda: _Asterisk(env, finished), HOST, port)
        except OSError:
            in_flight -= 1
            errors += 1
            return
        await fut

    # Warm-up: connections, caches, the allocator.
    await asyncio.gather(*(one() for _ in range(200)))
    latencies.clear()
    errors = 0
    started = time.perf_counter()
    end = started + load.seconds
    if load.rate is None:
        async def worker() -> None:
            while time.perf_counter() < end:
                await one()
        await asyncio.gather(*(worker() for _ in range(load.concurrency)))
    else:
        launched = 0
        tasks: set[asyncio.Task[None]] = set()
        while (now := time.perf_counter()) < end:
            due = int((now - started) * load.rate)
            while launched < due:
                launched += 1
                if in_flight >= load.max_in_flight:
                    dropped += 1
                    continue
                t = loop.create_task(one())
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            await asyncio.sleep(0.0005)
        if tasks:
            await asyncio.wait(tasks, timeout=10)
    elapsed = time.perf_counter() - started
    return {"completed": len(latencies), "errors": errors, "dropped": dropped, "seconds": elapsed,
            "latencies": latencies, "warmup": 200}


def _generator_main(port: int, load: Load, conn: Connection) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    envs = [e.splitlines(keepends=True) if load.line_writes else [e] for e in env_blocks(4096)]
    conn.send(asyncio.run(_generate(port, load, envs)))
    conn.close()


# -- rows --------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Row:
    label: str
    offered: str
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    dropped: int
    cpu_us: float  # server CPU per session

    def line(self) -> str:
        return (f"| {self.label:<24} | {self.offered:>10} | {self.calls_per_s:>9,.0f} | {self.p50_ms:>7.2f} | "
                f"{self.p99_ms:>8.2f} | {self.cpu_us:>11.0f} | {self.errors + self.dropped:>6} |")


HEADER = ("| server                   |    offered |   calls/s |  p50 ms |   p99 ms | CPU µs/call | failed |\n"
          "|--------------------------|-----------:|----------:|--------:|---------:|------------:|-------:|")

PROFILE: set[tuple[str, float | None]] = set()  # (label, offered rate) of the rows to profile (--profile)

StartServer = Callable[[], Awaitable[tuple[int, Callable[[], Awaitable[None]]]]]


async def measure(label: str, start_server: StartServer, load: Load) -> Row:
    """Serve with ``start_server`` (-> port, close) in this loop while a generator process offers ``load``."""
    port, close = await start_server()
    threads0 = thread_cpu()
    profiler = cProfile.Profile() if (label, load.rate) in PROFILE else None
    if profiler is not None:
        profiler.enable()
    cpu0 = time.process_time()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_generator_main, args=(port, load, child), daemon=True)
    proc.start()
    child.close()
    try:
        result: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    finally:
        cpu = time.process_time() - cpu0  # the server's CPU (this process), warm-up and spawn included
        if profiler is not None:
            profiler.disable()
        await asyncio.get_running_loop().run_in_executor(None, proc.join, 30)
        await close()
    if profiler is not None:  # where this row's server time goes (cProfile inflates it: read the shares)
        print(f"-- cProfile of the server, {label} at {load.rate or 'saturation'}: top 25 by own time", flush=True)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    threads = {tid: t - threads0.get(tid, 0.0) for tid, t in thread_cpu().items()}
    lat = sorted(result["latencies"])
    p = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else [float("nan")] * 99
    offered = "saturation" if load.rate is None else f"{load.rate:,.0f}/s"
    calls = result["completed"] + result["errors"] + result["warmup"]
    if THREADS and calls:  # the event loop's thread against the others (the audit writer, executors)
        # The others, as the process's total less the loop's: the audit writer's thread has ended by now.
        main = threads.get(threading.get_native_id(), 0.0)
        print(f"   {label} at {offered}: CPU per call, loop thread {main / calls * 1e6:.0f} µs, other threads "
              f"{max(0.0, cpu - main) / calls * 1e6:.0f} µs", flush=True)
    return Row(label, offered, result["completed"] / result["seconds"], p[49] * 1000, p[98] * 1000,
               result["errors"], result["dropped"], cpu / calls * 1e6 if calls else float("nan"))


THREADS = False  # --threads: print each row's CPU per call by thread (Linux: /proc/self/task)


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each thread of this process, by native id; {} where /proc is missing."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    with contextlib.suppress(OSError):
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
                out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15)
    return out


async def run_row(label: str, make_gateway: Callable[[], Awaitable[Gateway]], load: Load) -> Row:
    """One row with dnc-gateway's FastAGI server around the Gateway ``make_gateway`` builds (hook for others)."""
    gw = await make_gateway()

    async def start() -> tuple[int, Callable[[], Awaitable[None]]]:
        server = AgiServer(gw, gw.config.agi)
        await server.start()

        async def close() -> None:
            await server.drain_and_close(2.0)
            await gw.close()
        return server.port, close

    return await measure(label, start, load)


CEILING_SETS_LABEL = "ceiling, four SETs"
CEILING_MSET_LABEL = "ceiling, one MSet"
PANORAMISK = {"set_variable": "panoramisk, four SETs", "mset": "panoramisk, one MSet"}
FLOOR_LABEL = "ceiling + decision, MSet"
DNC_SETS = "dnc-gateway, four SETs"
DNC_MSET = "dnc-gateway, one MSet"  # [agi] answer = "mset", the default

CEILING_SETS = (("DNC_REASON", ""), ("DNC_DECISION_ID", "0" * 22), ("DNC_WOULD_BLOCK", "0"), ("DNC_VERDICT", "ALLOW"))


async def start_ceiling_mset() -> tuple[int, Callable[[], Awaitable[None]]]:
    """The ceiling for ``[agi] answer = "mset"``: the same fixed answer in one EXEC MSet round trip."""
    return await start_ceiling([(str(mset(CEILING_SETS)) + "\n").encode()])


async def start_ceiling(commands: list[bytes] | None = None, decide: Callable[[bytes], list[bytes]] | None = None
                        ) -> tuple[int, Callable[[], Awaitable[None]]]:
    """A bare asyncio FastAGI server: reads the env block, answers four fixed SET VARIABLEs, closes.

    With ``decide`` (env block -> commands), the answer is computed per call instead: see :func:`decision_floor`.
    """
    fixed = commands if commands is not None else [(set_variable(n, v) + "\n").encode() for n, v in CEILING_SETS]

    class Bare(asyncio.Protocol):
        def __init__(self) -> None:
            self.buf = b""
            self.step = -1
            self.answer = fixed
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)

        def data_received(self, data: bytes) -> None:
            assert self.transport is not None
            self.buf += data
            if self.step < 0:
                i = self.buf.find(b"\n\n")
                if i < 0:
                    return
                if decide is not None:
                    self.answer = decide(self.buf[:i])
                self.buf = self.buf[i + 2:]
                self.step = 0
                self.transport.write(self.answer[0])
                return
            while (i := self.buf.find(b"\n")) >= 0:
                self.buf = self.buf[i + 1:]
                self.step += 1
                if self.step == len(self.answer):
                    self.transport.close()
                    return
                self.transport.write(self.answer[self.step])

    server = await asyncio.get_running_loop().create_server(Bare, HOST, 0, backlog=4096)

    async def close() -> None:
        server.close()
        await server.wait_closed()
    return int(server.sockets[0].getsockname()[1]), close


def decision_floor(make_gateway: Callable[[], Awaitable[Gateway]]) -> StartServer:
    """The MSet ceiling plus exactly what deciding adds: parse the env block, ``routes.check``, encode the MSet.

    No session layer (timers, limits, allowlist, metrics hooks, error handling): the best a server that
    decides could do on this loop, whatever its session machinery.
    """
    async def start() -> tuple[int, Callable[[], Awaitable[None]]]:
        gw = await make_gateway()

        def decide(block: bytes) -> list[bytes]:
            sets = routes.check(parse_env(block), {}, gw)
            assert isinstance(sets, tuple), "the embedded gateway answers at once"
            return answer_commands(sets, "mset")

        port, close = await start_ceiling(decide=decide)

        async def close_all() -> None:
            await close()
            await gw.close()
        return port, close_all
    return start


def panoramisk_server(make_gateway: Callable[[], Awaitable[Gateway]], answer: str = "mset") -> StartServer:
    """panoramisk 1.4's FastAGI Application with the same decision and the same answer (one MSet or four SETs)."""
    async def start() -> tuple[int, Callable[[], Awaitable[None]]]:
        from panoramisk.fast_agi import Application

        gw = await make_gateway()
        app = Application(loop=asyncio.get_running_loop())

        async def check(request: Any) -> None:
            h = request.headers
            outcome = await gw.check(h.get("agi_arg_1", ""), h.get("agi_arg_2", ""), channel=h.get("agi_channel", ""),
                                     uniqueid=h.get("agi_uniqueid", ""), source="agi")
            for command in answer_commands(routes.check_sets(outcome), answer):  # the same answer as ours
                await request.send_command(command.decode().removesuffix("\n"))

        app.add_route("check", check)
        server = await asyncio.start_server(app.handler, HOST, 0, backlog=4096)

        async def close() -> None:
            server.close()
            await server.wait_closed()
            await gw.close()
        return int(server.sockets[0].getsockname()[1]), close
    return start


def _ratio(a: Row | None, b: Row | None) -> str:
    return f"{a.calls_per_s / b.calls_per_s:.2f}" if a and b and b.calls_per_s else "n/a"


async def main_async(seconds: float, loads: list[float | None], *, audit: bool = False,
                     line_writes: bool = False) -> list[Row]:
    t = time.perf_counter()
    registry = random_registry()
    built = time.perf_counter() - t
    print(f"registry: {registry.meta.count:,} random French mobile numbers, built in {built:.2f}s", flush=True)
    rows: list[Row] = []
    for rate in loads:
        load = Load(rate, seconds, line_writes=line_writes)
        # Each answer style against a ceiling and a panoramisk server that answer the same way.
        for answer, ceiling_label, ceiling, dnc_label in (
                ("set_variable", CEILING_SETS_LABEL, start_ceiling, DNC_SETS),
                ("mset", CEILING_MSET_LABEL, start_ceiling_mset, DNC_MSET)):
            make_gateway = embedded_gateway(registry, answer)
            for label, start in ((ceiling_label, ceiling),
                                 (PANORAMISK[answer], panoramisk_server(make_gateway, answer))):
                rows.append(await measure(label, start, load))
                print(rows[-1].line(), flush=True)
            if answer == "mset":  # how far a perfect session layer around the same decision could go
                rows.append(await measure(FLOOR_LABEL, decision_floor(make_gateway), load))
                print(rows[-1].line(), flush=True)
            rows.append(await run_row(dnc_label, make_gateway, load))
            print(rows[-1].line(), flush=True)
        if audit:  # the durable audit's cost, same run (issue 4)
            import audit as audit_bench  # bench/audit.py: this script's folder is on sys.path

            with tempfile.TemporaryDirectory(prefix="dnc-bench-audit-") as tmp:
                rows += await audit_bench.agi_rows(registry, seconds, [rate], Path(tmp))
    return rows


def parse_args(ap: argparse.ArgumentParser,
               argv: list[str] | None) -> tuple[argparse.Namespace, list[float | None], float, bool]:
    """Shared options of the benchmark tables: (options, loads, seconds a row, uvloop installed)."""
    ap.add_argument("--quick", action="store_true", help="1 s a row instead of 3")
    ap.add_argument("--seconds", type=float, help="seconds a row")
    ap.add_argument("--loads", default="1000,5000,saturation",
                    help="comma-separated offered loads in calls/s, 'saturation' for the closed loop")
    ap.add_argument("--threads", action="store_true", help="each row's CPU per call by thread (Linux)")
    ap.add_argument("--profile", action="append", default=[], metavar="LABEL@LOAD",
                    help="cProfile the server during that row, e.g. 'gateway+redis, audit on@saturation'")
    args = ap.parse_args(argv)
    measure_as(args)
    loads = [None if x.strip() == "saturation" else float(x) for x in args.loads.split(",") if x.strip()]
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    uv = False
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        uv = True
    return args, loads, seconds, uv


def measure_as(args: argparse.Namespace) -> None:
    """``--threads`` and ``--profile LABEL@LOAD``, as both entry points take them."""
    global THREADS
    THREADS = args.threads
    for spec in args.profile:
        label, _, at = spec.rpartition("@")
        PROFILE.add((label, None if at == "saturation" else float(at)))


def closing_audit_too(gw: Gateway, log: Any) -> None:
    """``run_row`` closes the gateway only: make that flush and close its audit log too."""
    close = gw.close

    async def close_both() -> None:
        await close()
        await log.close()
    gw.close = close_both  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--audit", action="store_true",
                    help="also dnc-gateway with the durable audit off and on, at each load (bench/audit.py)")
    ap.add_argument("--line-writes", action="store_true",
                    help="the load generator writes the env block one line per write, as Asterisk does")
    args, loads, seconds, uv = parse_args(ap, argv)
    print(f"FastAGI benchmark: {platform.python_implementation()} {platform.python_version()}, "
          f"{'uvloop' if uv else 'asyncio'}, {os.cpu_count()} CPUs, {seconds:g}s a row, {date.today()}"
          f"{', env block one line per write' if args.line_writes else ''}", flush=True)
    print(HEADER, flush=True)
    rows = asyncio.run(main_async(seconds, loads, audit=args.audit, line_writes=args.line_writes))
    print()
    print(HEADER)
    for r in rows:
        print(r.line())
    by = {(r.label, r.offered): r for r in rows}
    sat = "saturation"
    print()
    for label, ceiling, pano in ((DNC_MSET, CEILING_MSET_LABEL, PANORAMISK["mset"]),
                                 (DNC_SETS, CEILING_SETS_LABEL, PANORAMISK["set_variable"])):
        print(f"{label} at saturation: {_ratio(by.get((label, sat)), by.get((ceiling, sat)))} of its ceiling "
              f"(target >= 0.60), {_ratio(by.get((label, sat)), by.get((pano, sat)))}x panoramisk answering the "
              "same way (target >= 3)")
    floor = by.get((FLOOR_LABEL, sat))
    print(f"without any session layer, the same decision reaches {_ratio(floor, by.get((CEILING_MSET_LABEL, sat)))} "
          f"of the MSet ceiling and {_ratio(floor, by.get((PANORAMISK['mset'], sat)))}x panoramisk")
    for r in rows:
        if r.label == "dnc-gateway, audit on":
            base = next((x for x in rows if x.label == "dnc-gateway, audit off" and x.offered == r.offered), None)
            if base is not None and base.calls_per_s:
                print(f"durable audit at {r.offered}: costs {1 - r.calls_per_s / base.calls_per_s:.0%} of throughput "
                      f"(target <= 30 % at 5,000/s); p99 {base.p99_ms:.2f} -> {r.p99_ms:.2f} ms")
    for label in (DNC_MSET, DNC_SETS):
        g5 = by.get((label, "5,000/s"))
        if g5:
            print(f"{label} p99 at 5,000/s: {g5.p99_ms:.2f} ms (target <= 2 ms)")
    return 0


# -- Redis call history vs embedded, same run (issue 7) ------------------------------------------------------------

def redis_gateway(registry: RegistryList, url: str) -> Callable[[], Awaitable[Gateway]]:
    """``make_gateway`` for :func:`run_row`: the same gateway with its call history in Redis (default timeouts)."""
    async def make() -> Gateway:
        from gateway.state.redis_store import RedisState

        tmp = Path(tempfile.mkdtemp(prefix="dnc-bench-"))
        config = bench_config(tmp)
        config = dataclasses.replace(config, gateway=dataclasses.replace(config.gateway, state=url))
        state = RedisState(url, secret="bench", retention=RETENTION)
        state.metrics = _StateErrors  # counts what a busy loop turns into state_unavailable
        gw = Gateway(config, state=state, clock=lambda: NOW)
        await gw.start()
        gw.holder.install(registry)
        return gw
    return make


class _Commits:
    """The audit's group commits of a row: how many records each fdatasync carried."""

    commits = 0
    records = 0
    seconds = 0.0

    @classmethod
    def audit_commit(cls, seconds: float, records: int, queue_depth: int) -> None:
        cls.commits += 1
        cls.records += records
        cls.seconds += seconds

    @classmethod
    def reset(cls) -> str:
        said = (f" ({cls.records / cls.commits:.1f} records a commit, {cls.seconds / cls.commits * 1000:.2f} ms each)"
                if cls.commits else "")
        cls.commits = cls.records = 0
        cls.seconds = 0.0
        return said


class _StateErrors:
    count = 0

    @classmethod
    def state_error(cls, kind: str) -> None:
        cls.count += 1


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A throwaway ``redis-server`` (Debian package) on a free port, no persistence; None when not installed."""
    import shutil
    import socket
    import subprocess

    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = int(s.getsockname()[1])
    workdir = tempfile.mkdtemp(prefix="dnc-bench-redis-")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                             "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                with socket.create_connection((HOST, port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.02)
        yield f"redis://{HOST}:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


async def redis_rows(seconds: float, loads: list[float | None]) -> list[Row]:
    """dnc-gateway with embedded then Redis call history, same registry and loads, one run."""
    registry = random_registry()
    rows: list[Row] = []
    with redis_server() as url:
        if url is None:
            print("redis-server is not installed (Debian: apt-get install redis-server): no Redis rows")
            return rows
        for rate in loads:
            load = Load(rate, seconds)
            for label, make in (("dnc-gateway embedded", embedded_gateway(registry)),
                                ("dnc-gateway redis", redis_gateway(registry, url))):
                _StateErrors.count = 0
                rows.append(await run_row(label, make, load))
                errors = f" ({_StateErrors.count} state errors)" if label.endswith("redis") else ""
                print(rows[-1].line() + errors, flush=True)
    return rows


def main_redis(argv: list[str] | None = None) -> int:
    """``bench/agi.py --redis [--quick] [--loads …]``: embedded vs Redis call history, row after row."""
    ap = argparse.ArgumentParser(description="FastAGI benchmark: Redis call history vs embedded")
    ap.add_argument("--redis", action="store_true", help="this table")
    _, loads, seconds, uv = parse_args(ap, argv)
    print(f"FastAGI benchmark, call history embedded vs Redis: {'uvloop' if uv else 'asyncio'}, "
          f"{os.cpu_count()} CPUs, {seconds:g}s a row, {date.today()}", flush=True)
    print(HEADER, flush=True)
    asyncio.run(redis_rows(seconds, loads))
    return 0


# -- the production path (issue 16): durable audit on, embedded and Redis state, beside the ceiling ---------------

PRODUCTION_LOADS = "500,1000,2000,saturation"
P_CEILING = CEILING_MSET_LABEL
P_OFF = "gateway, audit off"
P_ON = "gateway, audit on (prod)"
P_REDIS_OFF = "gateway+redis, audit off"
P_REDIS_ON = "gateway+redis, audit on"
_rows_made = 0


def production_gateway(registry: RegistryList, folder: Path, *, url: str | None,
                       audit: bool) -> Callable[[], Awaitable[Gateway]]:
    """``make_gateway`` for :func:`run_row`: the shipped defaults, with the durable audit log (``audit``: durable
    ALLOW, the shipped ``[audit]`` defaults) and the call history in Redis at ``url`` (None: embedded).

    Each Redis row counts under a professional of its own: the rows share the redis-server, and a number capped
    by one row would be a BLOCK (no durable wait) in the next.
    """
    async def make() -> Gateway:
        global _rows_made
        import audit as audit_bench  # bench/audit.py: this script's folder is on sys.path

        from gateway.audit import AuditLog
        from gateway.state.redis_store import RedisState

        _rows_made += 1
        config = bench_config(folder)
        g = dataclasses.replace(config.gateway, professional=f"bench{_rows_made}", state=url or "memory://")
        config = dataclasses.replace(config, gateway=g)
        log = None
        if audit:
            config = audit_bench.with_audit(config, folder / f"audit-{_rows_made}.db", durable_allow=True)
            log = AuditLog(config.gateway.audit or folder / "audit.db", config.audit)
            log.metrics = _Commits
            await log.start()
        state = None
        if url is not None:
            state = RedisState(url, secret="bench", retention=RETENTION)
            state.metrics = _StateErrors
        gw = Gateway(config, state=state, audit=log, clock=lambda: NOW)
        await gw.start()
        gw.holder.install(registry)
        if log is not None:
            closing_audit_too(gw, log)
        return gw
    return make


async def production_rows(seconds: float, loads: list[float | None], folder: Path) -> list[Row]:
    """At each load, one after the other: the bare ceiling, the gateway with the audit off and on, and the same
    two with the call history in Redis."""
    registry = random_registry()
    rows: list[Row] = []
    with redis_server() as url:
        if url is None:
            print("redis-server is not installed (Debian: apt-get install redis-server): no Redis rows")
        for rate in loads:
            load = Load(rate, seconds)
            rows.append(await measure(P_CEILING, start_ceiling_mset, load))
            print(rows[-1].line(), flush=True)
            for label, make in ((P_OFF, production_gateway(registry, folder, url=None, audit=False)),
                                (P_ON, production_gateway(registry, folder, url=None, audit=True)),
                                (P_REDIS_OFF, production_gateway(registry, folder, url=url, audit=False)),
                                (P_REDIS_ON, production_gateway(registry, folder, url=url, audit=True))):
                if url is None and "redis" in label:
                    continue
                _StateErrors.count = 0
                _Commits.reset()
                rows.append(await run_row(label, make, load))
                errors = f" ({_StateErrors.count} state errors)" if _StateErrors.count else ""
                print(rows[-1].line() + errors + _Commits.reset(), flush=True)
    return rows


def production_summary(rows: list[Row]) -> list[str]:
    """The rows against issue 16's targets."""
    by = {(r.label, r.offered): r for r in rows}
    out = []

    def p99_cost(offered: str, target: float) -> None:
        off, on = by.get((P_OFF, offered)), by.get((P_ON, offered))
        if off and on:
            added = on.p99_ms - off.p99_ms
            out.append(f"durable audit at {offered}: p99 {off.p99_ms:.2f} -> {on.p99_ms:.2f} ms, adds {added:+.2f} ms "
                       f"(target <= {target:g} ms: {'met' if added <= target else 'MISSED'})")

    p99_cost("1,000/s", 1.0)
    p99_cost("2,000/s", 3.0)
    sat = "saturation"
    for off_label, on_label, what in ((P_OFF, P_ON, "embedded"), (P_REDIS_OFF, P_REDIS_ON, "Redis")):
        off, on = by.get((off_label, sat)), by.get((on_label, sat))
        if off and on and off.calls_per_s:
            share = on.calls_per_s / off.calls_per_s
            out.append(f"saturation, {what} state: audit on {on.calls_per_s:,.0f} vs off "
                       f"{off.calls_per_s:,.0f} calls/s = {share:.0%} "
                       f"(target >= 80 %: {'met' if share >= 0.8 else 'MISSED'})")
    ceiling = by.get((P_CEILING, sat))
    for label in (P_REDIS_OFF, P_REDIS_ON):
        r = by.get((label, sat))
        if r:
            vs = f", {r.calls_per_s / ceiling.calls_per_s:.0%} of the bare ceiling" if ceiling else ""
            out.append(f"{label} at saturation: {r.calls_per_s:,.0f} calls/s{vs} (target >= 5,000: "
                       f"{'met' if r.calls_per_s >= 5000 else 'MISSED'})")
    for offered in sorted({r.offered for r in rows}):
        emb, red = by.get((P_OFF, offered)), by.get((P_REDIS_OFF, offered))
        if emb and red:
            out.append(f"Redis' share of the server CPU at {offered}: {red.cpu_us:.0f} - {emb.cpu_us:.0f} = "
                       f"{red.cpu_us - emb.cpu_us:.0f} µs/call (target <= 80 µs client CPU per call)")
    return out


def main_production(argv: list[str] | None = None) -> int:
    """``bench/agi.py --production [--quick] [--loads …]``: the production configuration beside the ceiling."""
    ap = argparse.ArgumentParser(description="FastAGI benchmark: the production path (issue 16)")
    ap.add_argument("--production", action="store_true", help="this table")
    ap.add_argument("--dir", help="folder for the audit databases (on the disk the gateway will use)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--loads" not in argv:
        argv += ["--loads", PRODUCTION_LOADS]
    args, loads, seconds, uv = parse_args(ap, argv)
    print(f"FastAGI benchmark, the production path: {'uvloop' if uv else 'asyncio'}, {os.cpu_count()} CPUs, "
          f"{seconds:g}s a row, {date.today()}; audit: durable ALLOW with the shipped [audit] defaults; "
          "CPU: the server process's, per call", flush=True)
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="dnc-bench-prod-") as tmp:
        rows = asyncio.run(production_rows(seconds, loads, Path(tmp)))
    print()
    print(HEADER)
    for r in rows:
        print(r.line())
    print()
    for line in production_summary(rows):
        print(line)
    return 0


# -- the audited ALLOW's hand-off on the loop, alone (--handoff) ------------------------------------------------

class _BatchSink:
    """An audit sink that commits nothing: its :meth:`wake` settles every record queued so far at once, as the
    audit log's one wake-up per commit group does, so that only the loop's side of the hand-off is measured."""

    def __init__(self) -> None:
        self.waiters: list[Any] = []

    async def append(self, record: Any, *, durable: bool) -> None:
        if durable:
            future = asyncio.get_running_loop().create_future()
            self.waiters.append(future)
            await future

    def append_nowait(self, record: Any) -> None:
        pass

    def append_then(self, record: Any, done: Callable[[Any], None]) -> None:
        self.waiters.append(done)

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for w in waiters:
            if isinstance(w, asyncio.Future):
                w.set_result(None)
            else:
                w(None)


async def handoff_rows(rounds: int, calls: int, group: int) -> list[str]:
    """Loop CPU per audited ALLOW, from the route to its answer's variables: awaited in a task (a future per
    call) against called back from the group's wake-up (``Gateway.finish_then``), against no audit
    at all; the same Gateway (embedded state, a small registry), ``group`` calls per wake-up, rounds alternating."""
    tmp = Path(tempfile.mkdtemp(prefix="dnc-bench-handoff-"))
    sink = _BatchSink()
    config = bench_config(tmp)
    audited = Gateway(config, audit=sink, clock=lambda: NOW)
    bare = Gateway(config, clock=lambda: NOW)
    for gw in (audited, bare):
        await gw.start()
        gw.holder.install(random_registry(100_000, seed=1))
    loop = asyncio.get_running_loop()
    answered = 0

    def answer(sets: routes.Sets) -> None:
        nonlocal answered
        answered += 1

    async def later(pending: Any) -> None:  # what a server's task would do with the route's check
        answer(check.sets(await pending))

    check = routes.ROUTES[routes.Route.CHECK]

    def done(outcome: Any) -> None:
        answer(check.sets(outcome))
    serial = iter(range(10**9))

    def requests() -> list[Any]:  # numbers never seen before (no cap reached): every call is an ALLOW
        return [parse_env(b"agi_network_script: check\nagi_arg_1: 0699%06d\nagi_arg_2: bench" % next(serial))
                for _ in range(calls)]

    async def task_path(reqs: list[Any]) -> None:
        for i in range(0, calls, group):
            held = [loop.create_task(later(audited.finish(cast(CallCheck, check.run(req, {}, audited)))))
                    for req in reqs[i:i + group]]
            await asyncio.sleep(0)  # the tasks run up to their future
            sink.wake()
            await asyncio.sleep(0)  # and finish
            await asyncio.sleep(0)
            assert all(t.done() for t in held)

    async def callback_path(reqs: list[Any]) -> None:
        for i in range(0, calls, group):
            for req in reqs[i:i + group]:
                assert audited.finish_then(cast(CallCheck, check.run(req, {}, audited)), done)
            await asyncio.sleep(0)
            sink.wake()
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    async def no_audit(reqs: list[Any]) -> None:
        for i in range(0, calls, group):
            for req in reqs[i:i + group]:
                res = check.run(req, {}, bare)
                assert isinstance(res, tuple)
                answer(res)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    paths = {"task + future (before)": task_path, "callback (after)": callback_path, "no audit": no_audit}
    seen: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            reqs = requests()
            answered = 0
            t0 = time.thread_time()
            await path(reqs)
            seen[name].append((time.thread_time() - t0) / calls * 1e6)
            assert answered == calls, (name, answered)
    floor = statistics.median(seen["no audit"])
    return [f"| {name:<22} | {statistics.median(us):>6.2f} µs | {statistics.median(us) - floor:>+6.2f} µs | "
            f"{min(us):.2f}–{max(us):.2f} |" for name, us in seen.items()]


def main_handoff(argv: list[str] | None = None) -> int:
    """``bench/agi.py --handoff``: the loop's CPU per audited ALLOW, task path against callback path."""
    ap = argparse.ArgumentParser(description="the audited ALLOW's hand-off on the loop")
    ap.add_argument("--handoff", action="store_true")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--group", type=int, default=16, help="records per commit group (one wake-up each)")
    args = ap.parse_args(argv)
    uv = False
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        uv = True
    print(f"audited ALLOW, loop CPU per call ({'uvloop' if uv else 'asyncio'}, {args.calls:,} calls a round, "
          f"{args.group} a wake-up, median of {args.rounds} alternating rounds, {date.today()})")
    print("| path                   |  CPU/call | vs no audit | range |\n|---|---:|---:|---|")
    for line in asyncio.run(handoff_rows(args.rounds, args.calls, args.group)):
        print(line)
    return 0


if __name__ == "__main__":
    if "--handoff" in sys.argv[1:]:
        sys.exit(main_handoff())
    if "--production" in sys.argv[1:]:
        sys.exit(main_production())
    sys.exit(main_redis() if "--redis" in sys.argv[1:] else main())
