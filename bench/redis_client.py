"""Client CPU per call with the Redis call history (issues 11 and 16).

Run: ``.venv/bin/python bench/redis_client.py`` (``--quick``: fewer calls).

One call here is what ``Gateway.check`` asks of the store, against a throwaway ``redis-server``:

- ``two trips, redis-py`` (before issue 16): read the history, then count the attempt with its cap, two scripts
  through redis-py's client (pooled connections, hiredis' parser);
- ``one trip, redis-py``: the one-trip script (read and count) through redis-py's client: what a Cluster or a
  TLS connection uses;
- ``one trip, link`` (the default for ``redis://`` and ``redis+sentinel://``): :meth:`RedisState.read_and_count`
  on the multiplexed connection (``gateway/state/redis_link.py``: pre-encoded keys, one write per loop iteration,
  hiredis' parser).

The time counted is this process's CPU time (``time.process_time``), so Redis' own work is left out: what a
gateway pays per call for the client side (commands encoded, replies parsed, the event loop). The variants run
in the same process, interleaved round by round, so that a busy neighbour slows all alike; the table shows each
one's median round. Issue 16's target: <= 80 µs per call.

- ``sequential``: one call at a time (latency-bound: the loop waits for each reply);
- ``burst of 64``: 64 calls at once, as a call-centre burst arrives (replies batch up per read).

``--profile``: a cProfile of the link variant's burst rounds (where its time goes).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agi import redis_server  # bench/agi.py: this script's folder is on sys.path

from gateway.state.model import Cap, Retention
from gateway.state.redis_store import MAX_ATTEMPTS_READ, RedisState

# What the gateway derives from the French defaults (30-day window, 60-day cooldown), each plus a day.
RETENTION = Retention(timedelta(days=31), timedelta(days=61))

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
CAP = Cap(4, NOW - timedelta(days=30))
PRO = "bench"

Call = Callable[[RedisState, int], Awaitable[object]]


async def two_trips(st: RedisState, key: int) -> None:
    """The call as it was before issue 16: history, then check-and-count, each a script through redis-py."""
    keys = st.scheme(PRO).all_keys(key)
    await st._trip(keys=keys, args=st._trip_args(False, NOW, None))
    await st._attempt(keys=[keys[0]], args=[*st._trip_args(True, NOW, CAP)[1:6]])


async def one_trip_redis_py(st: RedisState, key: int) -> None:
    await st._trip(keys=st.scheme(PRO).all_keys(key), args=st._trip_args(True, NOW, CAP))


async def one_trip_link(st: RedisState, key: int) -> None:
    await st.read_and_count(PRO, key, NOW, CAP, True)


VARIANTS: dict[str, Call] = {
    "two trips, redis-py (before)": two_trips,
    "one trip, redis-py (Cluster, TLS)": one_trip_redis_py,
    "one trip, link (now)": one_trip_link,
}


async def cpu_per_call(st: RedisState, call: Call, calls: int, concurrency: int, base: int) -> float:
    """Microseconds of this process's CPU per call."""
    start = time.process_time()
    for i in range(0, calls, concurrency):
        await asyncio.gather(*(call(st, base + (i + j) % 10_000) for j in range(concurrency)))
    return (time.process_time() - start) / calls * 1e6


async def main_async(calls: int, rounds: int, profile: bool) -> int:
    with redis_server() as url:
        if url is None:
            print("redis-server is not installed (Debian: apt-get install redis-server)")
            return 1
        st = RedisState(url, secret="bench", retention=RETENTION)
        await st.start()
        assert MAX_ATTEMPTS_READ > 0
        try:
            print(f"{'variant':<36}{'mode':<14}{'CPU µs/call':>12}{'rounds':>8}")
            for mode, concurrency in (("sequential", 1), ("burst of 64", 64)):
                samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
                for call in VARIANTS.values():  # warm-up: scripts loaded, keys created
                    await cpu_per_call(st, call, min(calls, 2000), concurrency, 0)
                for r in range(rounds):
                    for name, call in VARIANTS.items():
                        samples[name].append(await cpu_per_call(st, call, calls, concurrency, 100_000 * (r + 1)))
                for name, xs in samples.items():
                    print(f"{name:<36}{mode:<14}{statistics.median(xs):>12.1f}{len(xs):>8}")
            if profile:
                pr = cProfile.Profile()
                pr.enable()
                await cpu_per_call(st, one_trip_link, calls, 64, 9_000_000)
                pr.disable()
                pstats.Stats(pr).sort_stats("tottime").print_stats(15)
        finally:
            await st.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="fewer calls a round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile of the link variant, burst of 64")
    args = ap.parse_args(argv)
    return asyncio.run(main_async(2000 if args.quick else 10_000, args.rounds, args.profile))


if __name__ == "__main__":
    raise SystemExit(main())
