"""Audit benchmark (issue 4): what a durable audit costs, per append and per decision.

Run: ``.venv/bin/python bench/audit.py`` (about 30 s) or ``--quick``.

Rows, each on a fresh database in a temporary folder of the same disk as ``--dir`` (default: the system's
temporary folder; put it on the disk the gateway will use, fsync cost is the whole story):

- ``append`` rows: ``AuditLog.append`` alone from ``--concurrency`` concurrent callers (closed loop: each
  caller appends again as soon as its previous append returns), durable at several ``group_commit_ms``, then
  non-durable, against a no-op sink (the cost of the loop itself);
- ``check`` rows: ``Gateway.check`` of ALLOWed calls with the audit off, then on with durable ALLOW;
- ``@rate`` rows: the same, open loop at ``--rate`` calls/s (the issue's target: 5 000/s), where latency
  is measured from each call's scheduled arrival, so queueing is counted.

``--wal``: what one commit costs when the WAL is rewritten in place (checkpointed every few MB, the writer's
rule) or grown (checkpointed every 20,000 records, the rule before): the writer's own statements, one thread.

``--agi``: the issue's measure, through bench/agi.py's ``run_row`` hook (FastAGI sessions from a load generator
in its own process, 15M-number registry): ``dnc-gateway`` with the audit off and on (durable ALLOW), same run,
at each of ``--loads`` (default: 5 000 calls/s and saturation; issue 16: ``500,1000,2000,saturation``).
:func:`agi_rows` is what bench/agi.py can call to print them in its table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.audit import AuditLog, AuditRecord
from gateway.config import AuditSection, Config, parse
from gateway.service import Gateway

CONFIG = """
[gateway]
home_country = "FR"
professional = "bench"
state = "memory://"

[lists.bloctel]
kind = "opposition"
path = "bloctel.txt"

[campaigns.bench]
regime = "opposition"
lists = ["bloctel"]
caller_id = "0162000000"
check_hours = false
check_holidays = false
check_frequency = false
check_staleness = false
"""


def with_audit(config: Config, path: Path, **audit: Any) -> Config:
    """``config`` with the audit log at ``path`` (``[audit]`` keys as keywords, e.g. ``group_commit_ms=2``)."""
    return replace(config, gateway=replace(config.gateway, audit=path), audit=replace(config.audit, **audit))


def bench_config(root: Path) -> Config:
    (root / "bloctel.txt").write_text("".join(f"06120000{i:02d}\n" for i in range(100)))
    return parse(CONFIG, str(root / "bench.toml"), base=root)


def record(i: int) -> AuditRecord:
    return AuditRecord(f"{i:022x}", time.time(), "bench", f"+336{10_000_000 + i % 90_000_000}", "ALLOW", None,
                       "allow", False, "enforce", "opposition", {"bloctel": "2026-11-20:9d3f58d784b9"}, "0162000000",
                       f"PJSIP/agent-{i % 500:08x}", f"1795418477.{i}", "agi", "allowed: not on any list")


def pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))] if sorted_values else 0.0


async def closed_loop(op: Callable[[int], Awaitable[object]], concurrency: int, seconds: float) -> dict[str, float]:
    lat: list[float] = []
    n = 0
    end = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal n
        while time.perf_counter() < end:
            n += 1
            t0 = time.perf_counter()
            await op(n)
            lat.append(time.perf_counter() - t0)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return summary(lat, time.perf_counter() - start, time.process_time() - cpu)


async def open_loop(op: Callable[[int], Awaitable[object]], rate: float, seconds: float) -> dict[str, float]:
    """Calls arrive at ``rate``/s whatever happens to earlier ones; latency from the scheduled arrival."""
    lat: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, due: float) -> None:
        await op(i)
        lat.append(time.perf_counter() - due)

    start, cpu = time.perf_counter(), time.process_time()
    total = int(rate * seconds)
    i = 0
    while i < total:
        now = time.perf_counter()
        due_count = min(total, int((now - start) * rate) + 1)
        while i < due_count:
            t = asyncio.create_task(one(i, start + i / rate))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            i += 1
        await asyncio.sleep(0.0005)
    await asyncio.gather(*tasks)
    return summary(lat, time.perf_counter() - start, time.process_time() - cpu)


def summary(lat: list[float], elapsed: float, cpu: float) -> dict[str, float]:
    """``cpu_us``: process CPU (event loop and writer thread) per operation: what bounds throughput on a busy box."""
    lat.sort()
    return {"n": len(lat), "per_s": len(lat) / elapsed, "cpu_us": cpu / max(1, len(lat)) * 1e6,
            "p50_ms": pct(lat, 0.50) * 1e3,
            "p99_ms": pct(lat, 0.99) * 1e3, "max_ms": (lat[-1] if lat else 0.0) * 1e3}


async def append_row(folder: Path, label: str, section: AuditSection | None, durable: bool, args: argparse.Namespace,
                     rate: float | None = None) -> tuple[str, dict[str, float]]:
    audit = None
    if section is None:
        async def op(i: int) -> None:
            await asyncio.sleep(0)
    else:
        audit = AuditLog(folder / f"{label.replace(' ', '_')}.db", section)
        await audit.start()
        sink = audit

        async def op(i: int) -> None:
            await sink.append(record(i), durable=durable)
    try:
        gc.collect()
        if rate:
            r = await open_loop(op, rate, args.seconds)
        else:
            r = await closed_loop(op, args.concurrency, args.seconds)
    finally:
        if audit is not None:
            await audit.close()
    if audit is not None:
        r["commits"] = audit.stats()["commits"]
    return label, r


async def check_row(folder: Path, label: str, config: Config, args: argparse.Namespace,
                    rate: float | None = None) -> tuple[str, dict[str, float]]:
    audit = None
    if config.gateway.audit is not None:
        audit = AuditLog(config.gateway.audit, config.audit)
        await audit.start()
    gw = Gateway(config, audit=audit)
    gw.holder.load_all()
    await gw.start()
    numbers = [f"0612{100_000 + i:06d}" for i in range(5000)]  # not on the list: ALLOW, durable when audited

    async def op(i: int) -> None:
        await gw.check(numbers[i % len(numbers)], "bench", channel="PJSIP/agent-1", uniqueid=f"1.{i}")

    try:
        gc.collect()
        r = await open_loop(op, rate, args.seconds) if rate else await closed_loop(op, args.concurrency, args.seconds)
    finally:
        await gw.close()
        if audit is not None:
            await audit.close()
    if audit is not None:
        r["commits"] = audit.stats()["commits"]
    return label, r


async def run(args: argparse.Namespace) -> list[tuple[str, dict[str, float]]]:
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="dnc-audit-bench-") as tmp:
        folder = Path(tmp)
        base = bench_config(folder)
        rows.append(await append_row(folder, "append: no audit (no-op sink)", None, False, args))
        # The production default ([audit] as shipped), beside the explicit delays below.
        rows.append(await append_row(folder, "append: durable, [audit] defaults", AuditSection(), True, args))
        for gc_ms in args.group_commit_ms:
            rows.append(await append_row(folder, f"append: durable, group_commit_ms={gc_ms:g}",
                                         AuditSection(group_commit_ms=gc_ms), True, args))
        # Callers that never wait outrun any disk: room for the whole row, or the queue-full refusal ends it.
        rows.append(await append_row(folder, "append: not durable, group_commit_ms=2",
                                     AuditSection(group_commit_ms=2.0, max_queue=10**8), False, args))
        rows.append(await check_row(folder, "check: audit off", base, args))
        for gc_ms in (0.0, 2.0):
            cfg = with_audit(base, folder / f"check-{gc_ms:g}.db", group_commit_ms=gc_ms, durable_allow=True)
            rows.append(await check_row(folder, f"check: audit on, durable ALLOW, gc={gc_ms:g}ms", cfg, args))
        if args.rate:
            rows.append(await check_row(folder, f"check @{args.rate:g}/s: audit off", base, args, args.rate))
            cfg = with_audit(base, folder / "check-rate.db", group_commit_ms=2.0, durable_allow=True)
            rows.append(await check_row(folder, f"check @{args.rate:g}/s: audit on, durable, gc=2ms", cfg, args,
                                        args.rate))
    return rows


def print_table(rows: list[tuple[str, dict[str, float]]], args: argparse.Namespace) -> None:
    print(f"# audit benchmark: {platform.python_implementation()} {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, {args.seconds:g} s a row, concurrency {args.concurrency} (closed loop)")
    print(f"{'row':<50} {'ops/s':>9} {'cpu µs/op':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'commits':>8}")
    for label, r in rows:
        commits = f"{int(r['commits']):>8}" if "commits" in r else f"{'-':>8}"
        print(f"{label:<50} {r['per_s']:>9.0f} {r['cpu_us']:>10.1f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
              f"{r['max_ms']:>8.2f} {commits}")
    rows_by = dict(rows)
    off, on = rows_by.get("check: audit off"), rows_by.get("check: audit on, durable ALLOW, gc=2ms")
    if off and on:
        # A closed loop of N callers is bound by N / latency (the fsync), not by the machine: the CPU a call
        # costs is what limits throughput once the cores are busy.
        print(f"CPU per Gateway.check: {off['cpu_us']:.0f} µs audit off, {on['cpu_us']:.0f} µs durable audit on "
              f"(+{on['cpu_us'] - off['cpu_us']:.0f} µs: row, JSON, SHA-256, SQLite insert; the fsync is waited "
              f"for, not burnt): {(on['cpu_us'] - off['cpu_us']) * args.rate / 1e4:.0f} % of a core at "
              f"{args.rate:g} calls/s")
    off, on = (next((r for label, r in rows if "@" in label and what in label), None) for what in ("off", " on"))
    if off and on:
        print(f"open loop at {args.rate:g} calls/s: sustained {off['per_s']:.0f} (off) / {on['per_s']:.0f} (on) "
              f"calls/s, p99 {off['p99_ms']:.2f} ms -> {on['p99_ms']:.2f} ms")

def audited_gateway(registry: Any, folder: Path, **audit: Any) -> Callable[[], Awaitable[Gateway]]:
    """``make_gateway`` for bench/agi.py's ``run_row``: its embedded gateway, with a durable audit log."""
    import agi as agi_bench  # bench/agi.py: this script's folder is on sys.path

    async def make() -> Gateway:
        config = with_audit(agi_bench.bench_config(folder), folder / f"agi-audit-{time.monotonic_ns()}.db", **audit)
        log = AuditLog(config.gateway.audit or folder / "audit.db", config.audit)
        await log.start()
        gw = Gateway(config, audit=log, clock=lambda: agi_bench.NOW)
        await gw.start()
        gw.holder.install(registry)
        agi_bench.closing_audit_too(gw, log)
        return gw
    return make


async def agi_rows(registry: Any, seconds: float, rates: list[float | None], folder: Path) -> list[Any]:
    """Audit off and on, alternating, at each offered load: rows for bench/agi.py's table."""
    import agi as agi_bench

    rows = []
    for rate in rates:
        load = agi_bench.Load(rate, seconds)
        for label, make in (("dnc-gateway, audit off", agi_bench.embedded_gateway(registry)),
                            # The shipped [audit] defaults (group commit included): the production path.
                            ("dnc-gateway, audit on", audited_gateway(registry, folder, durable_allow=True))):
            rows.append(await agi_bench.run_row(label, make, load))
            print(rows[-1].line(), flush=True)
    return rows


def agi_main(args: argparse.Namespace) -> None:
    import agi as agi_bench

    seconds = 1.0 if args.quick else 3.0
    registry = agi_bench.random_registry()
    print(f"audit on/off over FastAGI: {registry.meta.count:,}-number registry, {seconds:g} s a row", flush=True)
    print(agi_bench.HEADER, flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="dnc-audit-agi-") as tmp:
        rows = asyncio.run(agi_rows(registry, seconds, args.loads, Path(tmp)))
    by = {(r.label, r.offered): r for r in rows}
    for offered in sorted({r.offered for r in rows}):
        off, on = by.get(("dnc-gateway, audit off", offered)), by.get(("dnc-gateway, audit on", offered))
        if off and on and off.calls_per_s:
            print(f"{offered}: durable audit costs {1 - on.calls_per_s / off.calls_per_s:.0%} of throughput "
                  f"(issue 16: saturation >= 80 % of audit-off); p99 {off.p99_ms:.2f} -> {on.p99_ms:.2f} ms "
                  f"(+{on.p99_ms - off.p99_ms:.2f}; issue 16: <= 1 ms at 1,000/s, <= 3 ms at 2,000/s); server CPU "
                  f"{off.cpu_us:.0f} -> {on.cpu_us:.0f} µs/call")


def wal_rows(folder: Path, group: int, commits: int, checkpoint: str) -> dict[str, float]:
    """The writer's commits of ``group`` records each, one after the other, on a fresh database, checkpointed as
    ``checkpoint`` says: "rows" every 20,000 records (before), "pages" every ``CHECKPOINT_PAGES`` estimated WAL
    pages (the writer's rule), "never". CPU (this thread) and wall time per commit; the checkpoints' own beside."""
    import random

    from gateway.audit import GENESIS, RowEncoder, open_writer
    from gateway.audit import writer as w

    path = folder / f"wal-{group}-{checkpoint}-{time.monotonic_ns()}.db"
    conn = open_writer(path)
    encoder, rng = RowEncoder(), random.Random(7)
    seq, head, since, n = 0, GENESIS, 0, 0
    cpu = wall = ck_cpu = ck_wall = 0.0
    lat: list[float] = []
    try:
        for _ in range(commits):
            recs = [record(n + k)._replace(number=f"+336{rng.randrange(10**8):08d}") for k in range(group)]
            n += group
            prepared = [encoder.row(r) for r in recs]
            t, c = time.perf_counter(), time.thread_time()
            conn.execute("BEGIN IMMEDIATE")
            params, new_seq, new_head = w._chain(prepared, seq, head, time.time())
            conn.execute(w._CAS_HEAD, (str(new_seq), new_head, str(seq), head))
            conn.execute(w._INSERTS[group], params)
            conn.execute("COMMIT")
            seq, head = new_seq, new_head
            cpu += time.thread_time() - c
            lat.append(time.perf_counter() - t)
            wall += lat[-1]
            since += group + (w.PAGES_PER_COMMIT if checkpoint == "pages" else 0)
            if (checkpoint == "rows" and since >= 20_000) or (checkpoint == "pages" and since >= w.CHECKPOINT_PAGES):
                t, c = time.perf_counter(), time.thread_time()
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                ck_cpu += time.thread_time() - c
                ck_wall += time.perf_counter() - t
                since = 0
        wal = path.with_name(path.name + "-wal").stat().st_size  # before close() checkpoints it away
    finally:
        conn.close()
    lat.sort()
    return {"cpu_us": cpu / commits * 1e6, "wall_us": wall / commits * 1e6, "p99_ms": pct(lat, 0.99) * 1e3,
            "ck_cpu_us": ck_cpu / commits * 1e6, "ck_wall_us": ck_wall / commits * 1e6,
            "wal_mb": wal / 1e6}


def wal_main(args: argparse.Namespace) -> None:
    """``--wal``: what a commit costs with the WAL rewritten in place (checkpointed every few MB) or grown."""
    print(f"# audit commits by checkpoint rule: SQLite {sqlite3.sqlite_version}, rounds interleaved; CPU = the "
          "committing thread's (SQLite, its write and fsync system calls)")
    print(f"{'records a commit, checkpoint':<42} {'commit CPU µs':>13} {'wall µs':>8} {'p99 ms':>7} "
          f"{'ckpt CPU µs':>11} {'ckpt wall µs':>12} {'WAL MB':>7}")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="dnc-audit-wal-") as tmp:
        for _ in range(args.rounds):
            for group, commits in ((1, 6000), (12, 2000)):
                for rule, what in (("rows", "every 20,000 records (before)"),
                                   ("pages", "every ~2,000 WAL pages (now)")):
                    r = wal_rows(Path(tmp), group, commits, rule)
                    print(f"{f'{group}, {what}':<42} {r['cpu_us']:>13.1f} {r['wall_us']:>8.1f} {r['p99_ms']:>7.2f} "
                          f"{r['ck_cpu_us']:>11.1f} {r['ck_wall_us']:>12.1f} {r['wal_mb']:>7.1f}", flush=True)
    print("(checkpoint columns: per commit, amortised)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="0.5 s a row")
    p.add_argument("--seconds", type=float, default=2.0, help="duration of each row")
    p.add_argument("--concurrency", type=int, default=64, help="concurrent callers (AGI sessions in flight)")
    p.add_argument("--rate", type=float, default=5000.0, help="open-loop rows at this many calls/s (0: none)")
    p.add_argument("--group-commit-ms", type=float, nargs="+", default=[0.0, 0.5, 2.0, 5.0])
    p.add_argument("--dir", help="folder for the databases (on the disk to measure)")
    p.add_argument("--agi", action="store_true", help="audit on/off over FastAGI with bench/agi.py (the issue's rows)")
    p.add_argument("--wal", action="store_true", help="commit cost with the WAL rewritten in place or grown")
    p.add_argument("--rounds", type=int, default=2, help="with --wal: interleaved rounds")
    p.add_argument("--loads", default="5000,saturation",
                   help="with --agi: comma-separated offered loads in calls/s, 'saturation' for the closed loop")
    args = p.parse_args()
    args.loads = [None if x.strip() == "saturation" else float(x) for x in args.loads.split(",") if x.strip()]
    if args.quick:
        args.seconds = 0.5
    if args.wal:
        wal_main(args)
        return
    if args.agi:
        with contextlib.suppress(ImportError):
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        agi_main(args)
        return
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print_table(asyncio.run(run(args)), args)


if __name__ == "__main__":
    main()
