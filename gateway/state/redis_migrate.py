"""One-shot conversion of a Redis call history to the key layout of issue 17: ``python -m gateway.state.redis_migrate
URL`` (the ``[gateway] state`` URL: ``redis://``, ``redis+sentinel://`` or ``redis+cluster://``).

Layout 1 (before): ``dncgw:<professional>:<a|r|o|c>:<32 hex>`` (``{<32 hex>}`` on a Cluster), attempts scored by
epoch milliseconds with ~26-character text members, ``keyid`` holding the secret's fingerprint alone.
Layout 2 (``redis_store.LAYOUT``): the same 16 bytes of the number's HMAC in base64url (22 characters), attempts
scored by stamps (whole seconds since ``model.EPOCH``, rounded up) with integer members, ``keyid`` holding
``<fingerprint>:2``. A gateway of layout 2 refuses to count (``state_unavailable``, fail closed) while ``keyid``
says layout 1: it would read empty histories, forgetting opt-outs and refusals.

The new name is computed from the old one, so the conversion needs neither the secret nor any number. Stop every
gateway first (one still running would keep writing old names), then run it; it

1. marks each professional's ``keyid`` ``<fingerprint>:migrating`` (gateways of either layout refuse meanwhile);
2. scans the keys and rewrites each old one under its new name, with its TTL (refusals and consents keep their
   remaining retention, opt-outs none, attempts their remaining one), then deletes it;
3. sets ``keyid`` to ``<fingerprint>:2``.

A run cut short is run again: an attempt key is converted from its old content alone (the same members each
time), so copying it twice writes the same entries. Several thousand keys a second (pipelined batches).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import sys
from collections import Counter
from typing import Any

from redis.asyncio.cluster import RedisCluster

from gateway.state.model import EPOCH, RedisSettings
from gateway.state.redis_store import LAYOUT, _client
from gateway.state.redis_topology import parse

_OLD = re.compile(rb"^dncgw:(.+):([aroc]):(\{?)([0-9a-f]{32})(\}?)$")
_OLD_KEYID = re.compile(rb"^([0-9a-f]{16})(:migrating)?$")
_EPOCH_MS = int(EPOCH.timestamp()) * 1000
BATCH = 500  # keys per pipelined read and write


def new_name(old: bytes) -> tuple[bytes, str] | None:
    """The layout-2 name of a layout-1 key, and its kind (a, r, o or c); None: not a layout-1 key."""
    m = _OLD.match(old)
    if m is None or bool(m[3]) != bool(m[5]):
        return None
    d = base64.urlsafe_b64encode(bytes.fromhex(m[4].decode()))[:22]
    return b"dncgw:%b:%b:%b" % (m[1], m[2], b"{%b}" % d if m[3] else d), m[2].decode()


def stamp_of_ms(ms: float) -> int:
    """An epoch-millisecond score as a stamp (rounded up, as ``model.stamp``)."""
    s = -(-(int(ms) - _EPOCH_MS) // 1000)
    return s if s > 0 else 0


def converted(entries: list[tuple[bytes, float]]) -> dict[str, int]:
    """An old attempt key's (member, ms) entries as layout 2's {member: stamp}: the member is the stamp, or the
    next free integer (what the store's script picks); computed from the entries alone, in time order."""
    out: dict[str, int] = {}
    taken: set[int] = set()
    for ms in sorted(score for _, score in entries):
        t = member = stamp_of_ms(ms)
        while member in taken:
            member += 1
        taken.add(member)
        out[str(member)] = t
    return out


async def _convert(r: Any, batch: list[tuple[bytes, bytes, str]], done: Counter[str]) -> None:
    pipe = r.pipeline(transaction=False)
    for old, _, kind in batch:
        if kind == "a":
            pipe.zrange(old, 0, -1, withscores=True)
        else:
            pipe.get(old)
        pipe.pttl(old)
    got = await pipe.execute()
    pipe = r.pipeline(transaction=False)
    for i, (old, new, kind) in enumerate(batch):
        value, ttl = got[2 * i], got[2 * i + 1]
        if ttl == -2 or not value:  # gone meanwhile (expired)
            continue
        if kind == "a":
            pipe.zadd(new, converted(value))
            if ttl > 0:
                pipe.pexpire(new, ttl)
        elif kind == "o":
            pipe.set(new, value, nx=True)  # opt-outs never expire
        else:
            pipe.set(new, value, px=ttl if ttl > 0 else None)
        pipe.delete(old)
        done[kind] += 1
    await pipe.execute()


async def migrate(url: str) -> dict[str, int]:
    """Convert every layout-1 key at ``url``; returns how many keys of each kind (and professionals) it converted."""
    settings = RedisSettings(connect_timeout=2.0, op_timeout=10.0)
    r: Any = _client(parse(url), settings, settings.connect_timeout, settings.op_timeout, url)
    done: Counter[str] = Counter()
    try:
        marked: list[tuple[bytes, bytes]] = []
        async for k in r.scan_iter(match="dncgw:*:keyid", count=1000):
            m = _OLD_KEYID.match(await r.get(k) or b"")
            if m is not None:
                await r.set(k, m[1] + b":migrating")
                marked.append((k, m[1]))
        batch: list[tuple[bytes, bytes, str]] = []
        async for k in r.scan_iter(match="dncgw:*", count=1000):
            found = new_name(k)
            if found is not None:
                batch.append((k, *found))
                if len(batch) >= BATCH:
                    await _convert(r, batch, done)
                    batch = []
        if batch:
            await _convert(r, batch, done)
        for k, fingerprint in marked:
            await r.set(k, b"%b:%d" % (fingerprint, LAYOUT))
        done["professionals"] = len(marked)
    finally:
        if isinstance(r, RedisCluster):
            await r.aclose()
        else:
            await r.aclose(close_connection_pool=True)
    return dict(done)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.state.redis_migrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="the [gateway] state URL (redis://, redis+sentinel://, redis+cluster://)")
    args = ap.parse_args(argv)
    done = asyncio.run(migrate(args.url))
    print(f"converted {done.get('a', 0)} attempt, {done.get('r', 0)} refusal, {done.get('o', 0)} opt-out and "
          f"{done.get('c', 0)} consent keys of {done.get('professionals', 0)} professionals to layout {LAYOUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
