"""Decision benchmark (issue 2): decide() with a large registry vs a Python set and an indexed SQLite table.

Run: ``.venv/bin/python bench/decision.py`` (15M numbers) or ``--quick`` (1M).
Each store is built and measured in its own process, so that its memory (RSS growth) is its own.
Half of the queries hit the registry. Every query is a dialled string, so normalisation is included.
"""

from __future__ import annotations

import argparse
import array
import ctypes
import gc
import multiprocessing as mp
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyroaring import FrozenBitMap64

from gateway.numbers import Normaliser
from gateway.policy.campaign import Campaign
from gateway.policy.engine import Call, Engine
from gateway.policy.packs import home_law
from gateway.registry import snapshot
from gateway.registry.loaders import bitmap_of
from gateway.registry.model import ListKind, ListMeta, Registries, RegistryList
from gateway.state.model import EMPTY_HISTORY

NOW = datetime(2026, 3, 10, 10, 30, tzinfo=UTC)  # a Tuesday, opposition regime: the registry is consulted


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_in_use() -> int:
    """Bytes malloc has handed out (glibc mallinfo2): exact for roaring's C allocations, unlike RSS."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def registry_keys(size: int, seed: int = 7) -> array.array[int]:
    """Random valid French numbers (E.164 keys): 06 and 073-079 mobiles, one in four 01-05 fixed."""
    rng = random.Random(seed)
    rand = rng.randrange
    out = array.array("Q")
    for i in range(size):
        if i % 4 == 0:
            out.append(33_100_000_000 + rand(500_000_000))
        elif i % 4 == 3:
            out.append(33_730_000_000 + rand(70_000_000))
        else:
            out.append(33_600_000_000 + rand(100_000_000))
    return out


def queries(keys: array.array[int], n: int, seed: int = 11) -> list[str]:
    """Dialled strings, half of them on the registry, written nationally (0612345678)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = keys[rng.randrange(len(keys))] if i % 2 == 0 else 33_600_000_000 + rng.randrange(100_000_000)
        out.append("0" + str(k)[2:])
    rng.shuffle(out)
    return out


def measure(fn: Callable[[str], object], qs: list[str]) -> dict[str, float]:
    for q in qs[:2000]:  # warm-up
        fn(q)
    gc.collect()
    gc.freeze()
    lat = []
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for q in qs:
        t0 = clock()
        fn(q)
        lat.append(clock() - t0)
    total = time.perf_counter() - start
    lat.sort()
    return {
        "per_s": len(qs) / total,
        "p50_us": lat[len(lat) // 2] / 1000,
        "p99_us": lat[int(len(lat) * 0.99)] / 1000,
        "mean_us": statistics.fmean(lat) / 1000,
    }


def run_store(kind: str, size: int, nq: int, out: Any) -> None:
    keys = registry_keys(size)
    qs = queries(keys, nq)
    norm = Normaliser("FR")
    gc.collect()
    base = rss()  # the key array stays alive until each structure is measured
    t0 = time.perf_counter()
    result: dict[str, Any] = {"store": kind}
    if kind in ("decide", "roaring"):
        # Memory as in production: the gateway loads a snapshot (deserialises), it does not build one.
        data = bitmap_of(keys).serialize()
        del keys
        gc.collect()
        base = malloc_in_use()
        members = FrozenBitMap64.deserialize(data)
        mem = malloc_in_use() - base
        del data
        meta = ListMeta("bloctel", ListKind.OPPOSITION, "bench", date(2026, 3, 1), len(members),
                        snapshot.digest(members), 30)
        regs = Registries({"bloctel": RegistryList(meta, members)}, kinds={"bloctel": ListKind.OPPOSITION})
        result["serialized_bytes"] = len(members.serialize())
        if kind == "decide":
            camp = Campaign("c", regime="auto", lists=("bloctel",), caller_id="0162000000")
            engine = Engine({"c": camp}, home_law("FR"))
            decide = engine.decide
            parse = norm.parse

            def fn(q: str) -> object:
                return decide(Call(parse(q), "c"), regs, EMPTY_HISTORY, NOW)

            blocked = sum(1 for q in qs[:20000] if fn(q).verdict == "BLOCK")  # type: ignore[attr-defined]
            result["blocked_share"] = blocked / 20000
        else:
            parse = norm.parse

            def fn(q: str) -> object:
                return parse(q).key in members

        def raw(ks: list[int]) -> int:
            return sum(1 for k in ks if k in members)
    elif kind == "set":
        members_set = set(keys)
        mem = rss() - base
        del keys
        parse = norm.parse

        def fn(q: str) -> object:
            return parse(q).key in members_set

        def raw(ks: list[int]) -> int:
            return sum(1 for k in ks if k in members_set)
    elif kind == "sqlite":
        tmp = Path(tempfile.mkdtemp()) / "dnc.db"
        db = sqlite3.connect(str(tmp))
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE dnc (number INTEGER PRIMARY KEY) WITHOUT ROWID")
        db.executemany("INSERT OR IGNORE INTO dnc VALUES (?)", ((k,) for k in sorted(keys)))
        db.commit()
        result["file_bytes"] = tmp.stat().st_size
        mem = rss() - base  # SQLite's page cache; the data itself is the file
        del keys
        parse = norm.parse
        cur = db.cursor()
        sql = "SELECT 1 FROM dnc WHERE number = ?"

        def fn(q: str) -> object:
            return cur.execute(sql, (parse(q).key,)).fetchone() is not None

        def raw(ks: list[int]) -> int:
            ex = cur.execute
            return sum(1 for k in ks if ex(sql, (k,)).fetchone() is not None)
    else:
        raise ValueError(kind)
    result["build_s"] = time.perf_counter() - t0
    result["mem_bytes"] = mem
    result.update(measure(fn, qs))
    if kind != "decide":
        parse = norm.parse
        keyed = [parse(q).key for q in qs]
        raw(keyed[:2000])
        t = time.perf_counter()
        hits = raw(keyed)
        result["raw_ns"] = (time.perf_counter() - t) / len(keyed) * 1e9
        result["raw_hits"] = hits
    out.put(result)


def in_child(kind: str, size: int, nq: int) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=run_store, args=(kind, size, nq, q))
    p.start()
    res: dict[str, Any] = q.get()
    p.join()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=15_000_000, help="numbers in the registry")
    ap.add_argument("--queries", type=int, default=200_000)
    ap.add_argument("--quick", action="store_true", help="1M numbers, 50k queries")
    args = ap.parse_args()
    if args.quick:
        args.size, args.queries = 1_000_000, 50_000
    print(f"# decision benchmark: {args.size:,} numbers, {args.queries:,} queries (half hits), "
          f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.platform()}")
    rows = [in_child(k, args.size, args.queries) for k in ("decide", "roaring", "set", "sqlite")]
    by = {r["store"]: r for r in rows}
    labels = {
        "decide": "decide() + normalise, roaring (dnc-gateway)",
        "roaring": "lookup + normalise, roaring bitmap",
        "set": "lookup + normalise, Python set (baseline)",
        "sqlite": "lookup + normalise, SQLite indexed table (baseline)",
    }
    print()
    print(f"| {'what':52} | {'per second':>11} | {'p50 µs':>7} | {'p99 µs':>7} | {'memory MB':>9} | {'B/number':>8} |")
    print(f"|{'-' * 54}|{'-' * 13}|{'-' * 9}|{'-' * 9}|{'-' * 11}|{'-' * 10}|")
    for r in rows:
        mem = r["mem_bytes"]
        print(f"| {labels[r['store']]:52} | {r['per_s']:>11,.0f} | {r['p50_us']:>7.2f} | {r['p99_us']:>7.2f} | "
              f"{mem / 1e6:>9.1f} | {mem / args.size:>8.2f} |")
    print()
    print("Membership alone: the same queries, keys already normalised, a tight loop (no per-call timer):")
    print()
    print(f"| {'store':32} | {'ns per lookup':>13} | {'lookups/s':>12} |")
    print(f"|{'-' * 34}|{'-' * 15}|{'-' * 14}|")
    names = {"roaring": "roaring bitmap (dnc-gateway)", "set": "Python set", "sqlite": "SQLite indexed table"}
    for r in rows[1:]:
        print(f"| {names[r['store']]:32} | {r['raw_ns']:>13,.0f} | {1e9 / r['raw_ns']:>12,.0f} |")
    print()
    d, rb, s, q = by["decide"], by["roaring"], by["set"], by["sqlite"]
    print(f"decide() p99: {d['p99_us']:.2f} µs (target ≤ 10 µs); blocked share {d['blocked_share']:.1%}")
    print(f"membership: roaring {q['raw_ns'] / rb['raw_ns']:.0f}× faster than SQLite "
          f"(target ≥ 10×); with normalisation: {rb['per_s'] / q['per_s']:.1f}×; "
          f"full decide() vs a bare SQLite lookup: {d['per_s'] / q['per_s']:.1f}×")
    print(f"roaring memory (loaded snapshot) vs set: {rb['mem_bytes'] / s['mem_bytes']:.3f} of the set's "
          f"(target ≤ 0.1); "
          f"serialized snapshot {rb['serialized_bytes'] / args.size:.2f} B/number; "
          f"SQLite file {q['file_bytes'] / args.size:.1f} B/number")


if __name__ == "__main__":
    main()
