"""Client CPU per call with the Redis call history: hiredis' C parser vs redis-py's pure-Python one (issue 11).

Run: ``.venv/bin/python bench/redis_client.py`` (``--quick``: fewer calls).

One call here is what ``Gateway.check`` asks of the store: ``history`` then ``record_attempt`` (with a cap), two
round trips to a throwaway ``redis-server``. The time counted is this process's CPU time (``time.process_time``),
so Redis' own work is left out: what a gateway pays per call for the client side (commands encoded, replies
parsed, the event loop). Both parsers run in the same process, interleaved round by round, so that a busy
neighbour slows both alike; the table shows each one's median round.

- ``sequential``: one call at a time (latency-bound: the loop waits for each reply);
- ``burst of 64``: 64 calls at once, as a call-centre burst arrives (replies batch up per read).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agi import redis_server  # bench/agi.py: this script's folder is on sys.path
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
from redis._parsers.base import BaseParser

from gateway.state.model import Cap, Retention
from gateway.state.redis_store import RedisState

# What the gateway derives from the French defaults (30-day window, 60-day cooldown), each plus a day.
RETENTION = Retention(timedelta(days=31), timedelta(days=61))

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
# redis-py swaps the pure-Python class for the one of the protocol spoken (RESP3 by default in redis-py 8): the
# table names the class the connections really use.
PARSERS: dict[str, type[BaseParser]] = {"hiredis": _AsyncHiredisParser, "pure Python": _AsyncRESP2Parser}


async def store_with(url: str, parser: type[BaseParser]) -> tuple[str, RedisState]:
    """A started store whose connections parse with ``parser``, and the class they really use."""
    st = RedisState(url, secret="bench", retention=RETENTION)
    pool = st._redis.connection_pool
    # Connections are made with these kwargs: set before start() opens the pool, so every one parses with it.
    pool.connection_kwargs["parser_class"] = parser
    await st.start()
    used = {type(c._parser).__name__ for c in pool._available_connections}
    return "/".join(sorted(used)), st


async def one(st: RedisState, key: int) -> None:
    await st.history("bench", key)
    await st.record_attempt("bench", key, NOW, Cap(4, NOW - timedelta(days=30)))


async def cpu_per_call(st: RedisState, calls: int, concurrency: int, base: int) -> float:
    """Microseconds of this process's CPU per call."""
    start = time.process_time()
    for i in range(0, calls, concurrency):
        await asyncio.gather(*(one(st, base + (i + j) % 10_000) for j in range(concurrency)))
    return (time.process_time() - start) / calls * 1e6


async def main_async(calls: int, rounds: int) -> int:
    with redis_server() as url:
        if url is None:
            print("redis-server is not installed (Debian: apt-get install redis-server)")
            return 1
        stores = {f"{name} ({used})": st for name, cls in PARSERS.items() for used, st in [await store_with(url, cls)]}
        try:
            print(f"{'parser':<36}{'mode':<14}{'CPU µs/call':>12}{'rounds':>8}")
            for mode, concurrency in (("sequential", 1), ("burst of 64", 64)):
                samples: dict[str, list[float]] = {name: [] for name in stores}
                for st in stores.values():  # warm-up: scripts loaded, keys created
                    await cpu_per_call(st, min(calls, 2000), concurrency, 0)
                for r in range(rounds):
                    for name, st in stores.items():
                        samples[name].append(await cpu_per_call(st, calls, concurrency, 100_000 * (r + 1)))
                for name, xs in samples.items():
                    print(f"{name:<36}{mode:<14}{statistics.median(xs):>12.1f}{len(xs):>8}")
                hi, py = (statistics.median(xs) for xs in samples.values())
                print(f"{'':<36}{mode:<14}{'hiredis saves ' + format(1 - hi / py, '.0%'):>20}")
        finally:
            for st in stores.values():
                await st.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="fewer calls a round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    return asyncio.run(main_async(2000 if args.quick else 10_000, args.rounds))


if __name__ == "__main__":
    raise SystemExit(main())
