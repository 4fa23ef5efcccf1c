"""``dnc-gateway state rebuild``: a lost call-history store restored from the evidence (gateway.state.marker).

What the store held is rebuilt from what proves it:

- attempts: every ALLOW of the audit trail within the attempts' retention (gateway/audit/recover.py), each at its
  decision time; one already in the store is not counted twice;
- opt-outs: every opt-out of the consent store recorded at a call or over the API (the first one's date);
- consents: every unrevoked consent recorded at a call or over the API, at its collection time;
- refusals: every consent the consent store says was ended by a refusal, at the refusal's time.

A refusal recorded for a number that had no consent on record leaves no trace outside the history: those are
reported as not restorable. The marker is then written back, and the gateways decide again (a running gateway
on Redis within a second; an embedded history: stop the gateway first, rebuild, start it).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.audit.reader import AuditReader
from gateway.audit.recover import counted_allows
from gateway.config import Config
from gateway.policy.packs import PACKS
from gateway.registry import sidestore
from gateway.registry.sidestore import EntryKind, EntryOrigin, SideStore
from gateway.service import Gateway
from gateway.state import marker
from gateway.state.store import EmbeddedState, StateStore


@dataclass
class Rebuilt:
    attempts: int = 0
    skipped_attempts: int = 0
    optouts: int = 0
    consents: int = 0
    refusals: int = 0
    marker: str = ""


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


async def rebuild(config: Config, *, now: float | None = None) -> Rebuilt:
    g = config.gateway
    gw = Gateway(config)
    store: StateStore = gw.state
    prof = gw.professional
    done = Rebuilt()
    now = time.time() if now is None else now
    try:
        if g.audit is not None and g.audit.exists():
            keep = gw.engine.retention(PACKS).attempts.total_seconds()
            with AuditReader(g.audit) as reader:
                found = list(counted_allows(reader, after_seq=0, since=now - keep))
            by_key: dict[int, list[float]] = {}
            for a in found:
                key = gw.normaliser.parse(a.number).key
                if key:
                    by_key.setdefault(key, []).append(a.at)
            for key, ats in by_key.items():
                # The store keeps whole seconds: as many attempts per second as the trail has ALLOWs, no more.
                have = Counter(math.ceil(t.timestamp()) for t in (await store.history(prof, key)).attempts)
                for at in ats:
                    second = math.ceil(at)
                    if have[second] > 0:
                        have[second] -= 1
                        done.skipped_attempts += 1
                        continue
                    await store.record_attempt(prof, key, _at(at))
                    done.attempts += 1
        side = sidestore.default_path(g.data_dir)
        if side.exists():
            with SideStore(side) as s:
                rows = s.db.execute(
                    "SELECT key, kind, given_on, collected_at, revoked_at, revoked_source, origin, recorded_at "
                    "FROM entries WHERE origin IN (?, ?)", (str(EntryOrigin.CALL), str(EntryOrigin.API))).fetchall()
            for key, kind, given_on, collected_at, revoked_at, revoked_source, _origin, recorded_at in rows:
                key = int(key)
                given = datetime.fromisoformat(collected_at or recorded_at or f"{given_on}T00:00:00+00:00")
                if kind == str(EntryKind.OPTOUT) and revoked_at is None:
                    await store.record_optout(prof, key, given)
                    done.optouts += 1
                elif kind == str(EntryKind.CONSENT):
                    await store.record_consent(prof, key, given)
                    done.consents += 1
                    if revoked_at and (revoked_source or "").startswith("refusal"):
                        await store.record_refusal(prof, key, datetime.fromisoformat(revoked_at))
                        done.refusals += 1
        if isinstance(store, EmbeddedState):
            store.flush()
        if isinstance(store, marker.Marked) and store.persistent:
            done.marker = await marker.restore(store, prof, g.data_dir)
    finally:
        await gw.close()
    return done


def run_rebuild(config: Config) -> Rebuilt:
    return asyncio.run(rebuild(config))
