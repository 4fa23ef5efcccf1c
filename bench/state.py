"""Call history at a large call centre's scale (issue 17): memory, load time and latency of the packed embedded
store against today's (before issue 17), and Redis sized.

Run: ``.venv/bin/python bench/state.py`` (30 million attempts over 10 million numbers: several minutes, ~3 GB of
RAM at its peak, a SQLite file of ~1.5 GB in ``--dir``) or ``--quick`` (1 million attempts: a minute).

The workload: every number has one attempt or more, and the rest follow a Zipf law (rank r gets ~B/r more), each
number holding at most 120 (four a day for 30 days: the calls a cap lets through are what the store holds), over
the last 30 days. The same generator feeds every store.

Rows (each in a fresh child process, so that RSS deltas are the store's alone; the baseline and the packed store
alternate):

- ``today``: ``bench/state_baseline.py``, a verbatim copy of the store at e5f94a5 (dict of lists of datetimes),
  loading the same SQLite file. Its RAM (~300 bytes an attempt) makes 30 million attempts ~9 GB: on this shared
  machine it runs at ``--baseline-attempts`` (3 million by default); bytes per attempt do not depend on the size.
- ``packed``: the store of this branch, loading the SQLite file alone (no snapshot: the fallback after a crash
  with no snapshot), then from the snapshot that load wrote (the normal start).
- ``redis``: a throwaway ``redis-server`` holding a sample of the same workload (``--redis-attempts``) twice: in
  the key layout before issue 17 (its script, verbatim, on the store's connection) and in today's (``RedisState``'s
  one trip), sized by ``INFO memory`` deltas and ``MEMORY USAGE`` on sampled keys (a fit of bytes per key against
  attempts per key).

Latency: ``history`` (and the cap's count on it, as the frequency rule reads it) then ``record_attempt`` with the
French cap (4 in 30 days), per call, on numbers drawn with the workload's weights (the hot ones more often), after
the load; for Redis the call's one trip (read, check the cap, count) and the cap's count on its History.
Figures from a shared, loaded machine: compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.state.model import Cap, Retention

RETENTION = Retention(timedelta(days=31), timedelta(days=61))  # French defaults (30 and 60 days), plus a day
NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
WINDOW = 30 * 86400
TOP = 120  # attempts a number holds at most
PROFESSIONAL = "bench"
SAMPLES = 20_000  # timed calls per latency row


# -- the workload --------------------------------------------------------------------------------------------------


def counts(numbers: int, attempts: int) -> array[int]:
    """Attempts per number by rank: 1 + a Zipf share of the rest (capped at TOP), integerised by carrying the
    fractions, so that they add up to ``attempts`` (within a few)."""
    extra = attempts - numbers

    def total(b: float) -> float:  # sum of min(TOP - 1, b / r) for r = 1..numbers, in closed form
        m = min(numbers, int(b / (TOP - 1)))
        return (TOP - 1) * m + b * (math.log((numbers + 0.5) / (m + 0.5)))

    lo, hi = 0.0, float(extra)
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(mid) < extra else (lo, mid)
    out = array("I", bytes(4 * numbers))
    carry = 0.0
    for r in range(numbers):
        share = min(TOP - 1.0, lo / (r + 1)) + carry
        whole = int(share)
        carry = share - whole
        out[r] = 1 + whole
    return out


def key_of(rank: int) -> int:
    """Distinct French mobile numbers (as the gateway keys them), spread by a multiplicative permutation."""
    return 33_600_000_000 + (rank * 2_654_435_761) % 200_000_000


def attempts_of(per_rank: array[int]) -> Iterator[tuple[int, float]]:
    """(key, UNIX time) of every attempt, number by number, times spread over the 30 days before NOW."""
    end = NOW.timestamp()
    for r, c in enumerate(per_rank):
        key = key_of(r)
        for j in range(c):
            yield key, end - ((r * 7919 + j * 104_729 + j * j * 31) % WINDOW) - 0.25


def drawer(per_rank: array[int], seed: int) -> Iterator[int]:
    """Keys drawn with the workload's weights (a number called often is drawn as often)."""
    cum = array("Q")
    acc = 0
    for c in per_rank:
        acc += c
        cum.append(acc)
    rng = random.Random(seed)
    while True:
        yield key_of(bisect_right(cum, rng.randrange(acc)))


def write_db(path: Path, per_rank: array[int]) -> float:
    """The SQLite file the gateway would have written (today's schema), in bulk; returns seconds."""
    from gateway.state.store import _SCHEMA

    t = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    tables = [s for s in _SCHEMA.split(";") if "CREATE TABLE" in s]
    for ddl in tables:
        db.execute(ddl)
    rows = ((PROFESSIONAL, k, at) for k, at in attempts_of(per_rank))
    db.execute("BEGIN")
    while chunk := [r for _, r in zip(range(200_000), rows, strict=False)]:
        db.executemany("INSERT INTO attempts (professional, number, at) VALUES (?, ?, ?)", chunk)
    # a refusal for one number in 50 and an opt-out for one in 200: what the other tables hold
    db.executemany("INSERT INTO refusals (professional, number, at) VALUES (?, ?, ?)",
                   ((PROFESSIONAL, key_of(r), NOW.timestamp() - r % WINDOW) for r in range(0, len(per_rank), 50)))
    db.executemany("INSERT INTO optouts (professional, number, at) VALUES (?, ?, ?)",
                   ((PROFESSIONAL, key_of(r), NOW.timestamp() - r % WINDOW) for r in range(0, len(per_rank), 200)))
    db.execute("COMMIT")
    db.executescript(_SCHEMA)  # the index, built once at the end
    db.close()
    return time.perf_counter() - t


# -- children: one store each, in a fresh process ------------------------------------------------------------------


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def latency(store: Any, per_rank: array[int]) -> dict[str, float]:
    """p50/p99 (µs) of history_now + attempt_now with the French cap, on weighted draws: the median over rounds
    of 1,000 calls of each round's figure (a round another process preempted does not make it)."""
    cap = Cap(4, NOW - timedelta(days=30))
    draw = drawer(per_rank, 7)
    keys = [next(draw) for _ in range(SAMPLES)]
    p50s, p99s = [], []
    clock = time.perf_counter_ns
    gc.disable()
    for lo in range(0, SAMPLES, 1000):
        times = []
        for i in range(lo, lo + 1000):
            key, at = keys[i], NOW + timedelta(seconds=i)
            t = clock()
            store.history_now(PROFESSIONAL, key).attempts_since(cap.since)  # what the frequency rule reads
            store.attempt_now(PROFESSIONAL, key, at, cap)
            times.append(clock() - t)
        times.sort()
        p50s.append(times[500])
        p99s.append(times[990])
    gc.enable()
    return {"p50_us": sorted(p50s)[len(p50s) // 2] / 1000, "p99_us": sorted(p99s)[len(p99s) // 2] / 1000}


def interleaved(db: Path, numbers: int, attempts: int) -> dict[str, Any]:
    """Today's store and the packed one loaded side by side, timed in alternating rounds of calls (a busy
    neighbour slows both alike): p50/p99 of history (with the cap's count on it, as the frequency rule reads it),
    of record_attempt, and of the two. ``packed, datetimes`` is the packed store with the History of before
    (a tuple of datetimes built per read, counted by a loop): what the packed store cost before History held
    stamps (main at a60c665, without its cache of the 1,024 long runs read last)."""
    from state_baseline import EmbeddedState as Today
    from state_baseline import History as OldHistory

    from gateway.state.model import EMPTY_HISTORY, instant
    from gateway.state.store import EmbeddedState

    class WithDatetimes(EmbeddedState):
        def history_now(self, professional: str, key: int) -> Any:
            h = super().history_now(professional, key)
            if h is EMPTY_HISTORY:
                return h
            return OldHistory(tuple(map(instant, h.stamps)), h.last_refusal, h.opted_out_at, h.consent_at)

    per_rank = counts(numbers, attempts)
    stores = {"today": Today(db, retention=RETENTION, clock=lambda: NOW),
              "packed, datetimes": WithDatetimes(db, retention=RETENTION, clock=lambda: NOW),
              "packed": EmbeddedState(db, retention=RETENTION, clock=lambda: NOW)}
    for st in stores.values():
        st._db.close()  # nothing written back: the file stays as it is for the other rows
        st._db = None
    cap = Cap(4, NOW - timedelta(days=30))
    draw = drawer(per_rank, 11)
    keys = [next(draw) for _ in range(SAMPLES)]
    rounds: dict[str, list[list[tuple[int, int]]]] = {name: [] for name in stores}
    clock = time.perf_counter_ns
    gc.disable()
    for lo in range(0, SAMPLES, 1000):
        for name, st in stores.items():
            out: list[tuple[int, int]] = []
            for i in range(lo, lo + 1000):
                key, at = keys[i], NOW + timedelta(seconds=i)
                a = clock()
                st.history_now(PROFESSIONAL, key).attempts_since(cap.since)
                b = clock()
                st.attempt_now(PROFESSIONAL, key, at, cap)
                out.append((b - a, clock() - b))
            rounds[name].append(out)
    gc.enable()

    def pct(per_round: list[list[int]]) -> str:
        """The median over rounds of each round's p50 and p99: a round that another process preempted (2 cores,
        shared) does not make the figure."""
        p50s, p99s = [], []
        for xs in per_round:
            xs.sort()
            p50s.append(xs[len(xs) // 2])
            p99s.append(xs[int(len(xs) * 0.99)])
        return f"{sorted(p50s)[len(p50s) // 2] / 1000:.1f} / {sorted(p99s)[len(p99s) // 2] / 1000:.1f}"

    return {name: {"history": pct([[h for h, _ in r] for r in v]),
                   "record_attempt": pct([[w for _, w in r] for r in v]),
                   "both": pct([[h + w for h, w in r] for r in v])} for name, v in rounds.items()}


def child(kind: str, db: Path, numbers: int, attempts: int) -> dict[str, Any]:
    if kind == "ab":
        return interleaved(db, numbers, attempts)
    per_rank = counts(numbers, attempts)
    gc.collect()
    before = rss()
    t = time.perf_counter()
    if kind == "today":
        from state_baseline import EmbeddedState as Today

        store: Any = Today(db, retention=RETENTION, clock=lambda: NOW)
    else:
        from gateway.state.store import EmbeddedState

        store = EmbeddedState(db, retention=RETENTION, clock=lambda: NOW)
    seconds = time.perf_counter() - t
    gc.collect()
    held = rss() - before
    out: dict[str, Any] = {"kind": kind, "seconds": seconds, "rss": held,
                           "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if kind != "today":
        loaded = store.loaded
        out.update(source=loaded.source, read_seconds=loaded.seconds, rows=loaded.rows)
        led = store._ledgers[PROFESSIONAL]
        a = led.attempts
        out.update(held_attempts=a.attempts(), numbers=a.size,
                   times_bytes=sum(t.buffer_info()[1] * 4 for t in a.times if t),
                   index_bytes=sum(k.buffer_info()[1] * 8 for k in a.keys if k)
                   + sum(e.buffer_info()[1] * 4 for e in a.ends if e),
                   other_bytes=led.refusals.nbytes() + led.optouts.nbytes())
    store._db.close()  # no flush, no snapshot: the file stays as loaded, for the next row
    store._db = None
    out.update(latency(store, per_rank))
    return out


def run_child(kind: str, db: Path, numbers: int, attempts: int) -> dict[str, Any]:
    res = subprocess.run([sys.executable, __file__, "--child", kind, "--db", str(db), "--numbers", str(numbers),
                          "--attempts", str(attempts)], capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"{kind} child failed: {res.stderr[-3000:]}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


# -- Redis ---------------------------------------------------------------------------------------------------------


# The call's script before issue 17 (gateway/state/redis_store.py at a60c665, verbatim): epoch-ms scores, text
# members chosen by the gateway, the history returned as (member, score) pairs.
TODAY_TRIP_LUA = """
local refusal = redis.call('GET', KEYS[2]) or ''
local optout = redis.call('GET', KEYS[3]) or ''
local counting = ARGV[1] == '1'
if counting then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3]) end
local attempts = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[8]), -1, 'WITHSCORES')
local counted = 2
if counting and refusal == '' and optout == '' then
  local limit = tonumber(ARGV[5])
  if limit >= 0 and redis.call('ZCOUNT', KEYS[1], ARGV[4], '+inf') >= limit then
    counted = 0
  else
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[6])
    redis.call('PEXPIRE', KEYS[1], ARGV[7])
    counted = 1
  end
end
return {attempts, refusal, optout, counted, redis.call('GET', KEYS[4]) or ''}
"""


class TodaysKeys:
    """The Redis store's hot path before issue 17 (layout 1: 32-hex digests, text members, ms scores, a History
    of datetimes), sent on today's store's own multiplexed connection: the same round trip, the old bytes."""

    def __init__(self, link: Any, sha: bytes) -> None:
        import hashlib
        import hmac

        from gateway.state.redis_link import bulk

        self.link, self.bulk = link, bulk
        self.head = b"*15\r\n" + bulk(b"EVALSHA") + bulk(sha) + bulk(b"4")
        self.hmac, self.sha256 = hmac, hashlib.sha256
        self.prefix = b"%d:" % random.getrandbits(48)
        self.members = 0
        self.encoded: dict[int, bytes] = {}

    def name(self, kind: str, key: int) -> str:
        d = self.hmac.new(b"bench", str(key).encode(), self.sha256).hexdigest()[:32]
        return f"dncgw:{PROFESSIONAL}:{kind}:{d}"

    async def trip(self, key: int, at: datetime, cap: Cap | None) -> Any:
        from state_baseline import EMPTY_HISTORY, History

        bulk = self.bulk
        keys = self.encoded.get(key)
        if keys is None:
            keys = self.encoded[key] = b"".join(bulk(self.name(k, key).encode()) for k in "aroc")
        at_ms = int(at.timestamp() * 1000)
        keep = int(RETENTION.attempts.total_seconds() * 1000)
        self.members += 1
        member = b"%d:%b%d" % (at_ms, self.prefix, self.members)
        args = (bulk(b"1") + bulk(b"%d" % at_ms) + bulk(b"%d" % (at_ms - keep))
                + bulk(b"%d" % int(cap.since.timestamp() * 1000) if cap is not None else b"0")
                + bulk(b"%d" % cap.limit if cap is not None else b"-1") + bulk(member)
                + bulk(b"%d" % keep) + bulk(b"1000"))
        flat, refusal, optout, _, consent = await self.link.call(self.head + keys + args)
        if not flat and not refusal and not optout and not consent:
            return EMPTY_HISTORY
        dt = lambda ms: datetime.fromtimestamp(float(ms) / 1000, UTC)  # noqa: E731 - as _dt was
        return History(tuple(dt(score) for score in flat[1::2]), dt(int(refusal)) if refusal else None,
                       dt(int(optout)) if optout else None, dt(int(consent)) if consent else None)


async def redis_rows(url: str, numbers: int, attempts: int) -> dict[str, Any]:
    """Both layouts in one redis-server, filled through their own scripts with the same attempts: used_memory
    deltas, MEMORY USAGE fits, and the call's one trip (read, cap, count; then the cap's count on the History)
    in alternating rounds."""
    import redis.asyncio as aioredis

    from gateway.state.redis_store import RedisState

    per_rank = counts(numbers, attempts)
    raw = aioredis.from_url(url)
    st = RedisState(url, secret="bench", retention=RETENTION)
    await st.start()
    sha = await raw.script_load(TODAY_TRIP_LUA)
    today = TodaysKeys(st._link, sha if isinstance(sha, bytes) else sha.encode())
    scheme = st.scheme(PROFESSIONAL)
    await st.history(PROFESSIONAL, 0)  # writes keyid before the measures
    sample = [key_of(r) for r in range(0, numbers, max(1, numbers // 3000))]
    out: dict[str, Any] = {"attempts": 0, "numbers": numbers}
    for name, fill, key_name in (
            ("today", lambda k, at: today.trip(k, at, None), lambda k: today.name("a", k)),
            ("new", lambda k, at: st.read_and_count(PROFESSIONAL, k, at, None, True), scheme.attempts)):
        base = int((await raw.info("memory"))["used_memory"])
        pending: list[Any] = []
        filled = 0
        for key, ts in attempts_of(per_rank):
            pending.append(fill(key, datetime.fromtimestamp(ts, UTC)))
            if len(pending) == 256:
                await asyncio.gather(*pending)
                filled += len(pending)
                pending = []
        await asyncio.gather(*pending)
        filled += len(pending)
        used = int((await raw.info("memory"))["used_memory"]) - base
        xs, ys = [], []
        for key in sample:  # MEMORY USAGE per key against its attempts: bytes = per_number + per_attempt * n
            xs.append(float(await raw.zcard(key_name(key))))
            ys.append(float(await raw.memory_usage(key_name(key), samples=0)))
        slope, intercept = _fit(xs, ys)
        encoding = (await raw.object("encoding", key_name(key_of(0)))).decode()
        out.update({"attempts": filled, f"{name}_used": used, f"{name}_per_attempt": slope,
                    f"{name}_per_number": intercept, f"{name}_encoding": encoding,
                    f"{name}_key_bytes": len(key_name(key_of(0)))})
    # the call's one trip, both layouts in alternating rounds of 250 calls
    cap = Cap(4, NOW - timedelta(days=30))
    draw = drawer(per_rank, 7)
    keys = [next(draw) for _ in range(4000)]
    times: dict[str, list[list[int]]] = {"today": [], "new": []}
    clock = time.perf_counter_ns
    for lo in range(0, len(keys), 250):
        for name in times:
            xs_ns = []
            for i in range(lo, lo + 250):
                at = NOW + timedelta(seconds=i)
                t = clock()
                if name == "today":
                    (await today.trip(keys[i], at, cap)).attempts_since(cap.since)
                else:
                    (await st.read_and_count(PROFESSIONAL, keys[i], at, cap, True)).history.attempts_since(cap.since)
                xs_ns.append(clock() - t)
            xs_ns.sort()
            times[name].append(xs_ns)
    for name, rounds in times.items():
        p50s = sorted(r[len(r) // 2] for r in rounds)
        p99s = sorted(r[int(len(r) * 0.99)] for r in rounds)
        out[f"{name}_p50_us"] = p50s[len(p50s) // 2] / 1000
        out[f"{name}_p99_us"] = p99s[len(p99s) // 2] / 1000
    await st.close()
    await raw.flushall()
    await raw.aclose()
    return out


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return slope, my - slope * mx


# -- decide() on a history ----------------------------------------------------------------------------------------


def decide_rows(rounds: int = 20, per_round: int = 1000) -> dict[str, dict[int, str]]:
    """decide() of a French call on a number holding n attempts (n = 0, 3, 100), with the History of before (a
    tuple of datetimes, counted by loops) and today's (stamps, counted by bisection), in alternating rounds:
    the median over rounds of each round's p50 / p99 (µs)."""
    from state_baseline import History as OldHistory

    from gateway.numbers import Normaliser
    from gateway.policy.campaign import Campaign
    from gateway.policy.engine import Call, Engine
    from gateway.policy.packs import home_law
    from gateway.registry.model import Registries
    from gateway.state.model import History

    class Before(OldHistory):  # what the frequency rule asked of it then: were there attempts at all
        __slots__ = ()

        @property
        def attempt_count(self) -> int:
            return len(self.attempts)

    now = datetime(2026, 3, 10, 10, 30, tzinfo=UTC)  # a Tuesday, within the French hours
    engine = Engine({"c": Campaign("c", regime="auto", lists=(), caller_id="0162000000")}, home_law("FR"))
    regs = Registries({}, kinds={})
    call = Call(Normaliser("FR").parse("0612345678"), "c")
    out: dict[str, dict[int, str]] = {"before": {}, "today": {}}
    for n in (0, 3, 100):
        times = [now - timedelta(days=29, hours=1) + timedelta(minutes=7 * i) for i in range(n)]
        made = {"before": Before(tuple(times)), "today": History(times)}
        verdicts = {(d.verdict, d.reason) for d in (engine.decide(call, regs, h, now) for h in made.values())}
        assert len(verdicts) == 1, verdicts  # the same decision from either
        samples: dict[str, list[tuple[int, int]]] = {k: [] for k in made}
        clock = time.perf_counter_ns
        gc.disable()
        for _ in range(rounds):
            for name, h in made.items():
                xs = []
                for _ in range(per_round):
                    t = clock()
                    engine.decide(call, regs, h, now)
                    xs.append(clock() - t)
                xs.sort()
                samples[name].append((xs[len(xs) // 2], xs[int(len(xs) * 0.99)]))
        gc.enable()
        for name, rs in samples.items():
            p50 = sorted(a for a, _ in rs)[len(rs) // 2] / 1000
            p99 = sorted(b for _, b in rs)[len(rs) // 2] / 1000
            out[name][n] = f"{p50:.1f} / {p99:.1f}"
    return out


# -- the table -----------------------------------------------------------------------------------------------------


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 million attempts (a fast check)")
    ap.add_argument("--attempts", type=int, default=None)
    ap.add_argument("--numbers", type=int, default=None)
    ap.add_argument("--baseline-attempts", type=int, default=None, help="today's store at this size (RAM)")
    ap.add_argument("--redis-attempts", type=int, default=None)
    ap.add_argument("--dir", default=None, help="where the SQLite files go (default: a temporary directory)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--db", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.db), args.numbers, args.attempts)))
        return
    attempts = args.attempts or (1_000_000 if args.quick else 30_000_000)
    numbers = args.numbers or attempts // 3
    base_attempts = args.baseline_attempts or min(attempts, 1_000_000 if args.quick else 3_000_000)
    redis_attempts = args.redis_attempts or (100_000 if args.quick else 600_000)
    work = Path(args.dir or tempfile.mkdtemp(prefix="dnc-bench-state-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# bench/state.py: {attempts:,} attempts over {numbers:,} numbers (Zipf, <= {TOP} a number); "
          f"today's store at {base_attempts:,}; Redis at {redis_attempts:,}", flush=True)

    rows: list[tuple[str, dict[str, Any]]] = []
    small = work / "small.db"
    big = work / "big.db"
    for p in (small, big):
        for f in (p, p.with_name(p.name + ".packed")):
            f.unlink(missing_ok=True)
    print(f"writing {small} ({write_db(small, counts(base_attempts // 3, base_attempts)):.1f} s)", flush=True)
    # A/B at one size: today's, packed from SQLite alone, packed from its snapshot; then today's again.
    for kind in ("today", "packed", "packed", "today"):
        res = run_child(kind, small, base_attempts // 3, base_attempts)
        rows.append((f"{kind} @ {base_attempts:,}", res))
        print(kind, json.dumps(res), flush=True)
    ab = run_child("ab", small, base_attempts // 3, base_attempts)
    print("ab", json.dumps(ab), flush=True)
    if attempts != base_attempts:
        print(f"writing {big} ({write_db(big, counts(numbers, attempts)):.1f} s)", flush=True)
        for _ in range(2):  # from SQLite alone (writes the snapshot), then from the snapshot
            res = run_child("packed", big, numbers, attempts)
            rows.append((f"packed @ {attempts:,}", res))
            print("packed", json.dumps(res), flush=True)

    # Redis (lazy: only this row needs it)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from agi import redis_server  # bench/agi.py: a throwaway redis-server

    red: dict[str, Any] | None = None
    with redis_server() as url:
        if url is not None:
            red = asyncio.run(redis_rows(url, redis_attempts // 3, redis_attempts))
            print("redis", json.dumps(red), flush=True)

    print()
    print("| store | attempts held | numbers | load | from | RAM held (RSS delta) | bytes/attempt (all-in) "
          "| attempt + number bytes | history + record_attempt p50 / p99 |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for label, r in rows:
        n_att = r.get("held_attempts") or int(label.split("@")[1].replace(",", ""))
        split = (f"{r['times_bytes'] / r['held_attempts']:.1f} + {r['index_bytes'] / r['numbers']:.1f}"
                 if "times_bytes" in r else "-")
        print(f"| {label.split(' @')[0]} | {n_att:,} | {r.get('numbers', n_att // 3):,} | {r['seconds']:.2f} s "
              f"| {r.get('source', 'sqlite')} | {mib(r['rss'])} | {r['rss'] / n_att:.1f} | {split} "
              f"| {r['p50_us']:.1f} / {r['p99_us']:.1f} µs |")
    if red is not None:
        n = red["attempts"]
        for name, label in (("today", "redis, layout 1 (before)"), ("new", "redis, layout 2 (this)")):
            fit = f"{red[name + '_per_attempt']:.1f} + {red[name + '_per_number']:.1f}"
            print(f"| {label} | {n:,} | {red['numbers']:,} | - | - | {mib(red[name + '_used'])} "
                  f"| {red[name + '_used'] / n:.1f} | {fit} "
                  f"| {red[name + '_p50_us']:.1f} / {red[name + '_p99_us']:.1f} µs (one trip) |")
        for name in ("today", "new"):
            print(f"\nRedis {name}: zset encoding {red[name + '_encoding']}, attempt key {red[name + '_key_bytes']} "
                  f"bytes; MEMORY USAGE fit: {red[name + '_per_attempt']:.1f} bytes an attempt + "
                  f"{red[name + '_per_number']:.1f} a number; used_memory: {mib(red[name + '_used'] / n * 1e6)} per "
                  "million attempts at 3 a number.")
    print(f"\nLatency at {base_attempts:,} attempts, both stores in one process, alternating rounds of 1,000 calls "
          "(p50 / p99, µs):\n")
    print("| store | history | record_attempt (cap 4 in 30 days) | both |")
    print("|---|---:|---:|---:|")
    for name, v in ab.items():
        print(f"| {name} | {v['history']} | {v['record_attempt']} | {v['both']} |")
    dec = decide_rows()
    print("\ndecide() of a French call on a number holding n attempts, both Histories in alternating rounds of "
          "1,000 calls (p50 / p99, µs):\n")
    print("| History | 0 attempts | 3 attempts | 100 attempts (at its cap) |")
    print("|---|---:|---:|---:|")
    for name, label in (("before", "tuple of datetimes (before)"), ("today", "stamps (this)")):
        print(f"| {label} | {dec[name][0]} | {dec[name][3]} | {dec[name][100]} |")
    print(f"\nfiles in {work} (delete them: several hundred MB at full size)")


if __name__ == "__main__":
    main()
