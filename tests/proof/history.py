"""A number's history made by the real parts: 10 calls over 3 campaigns through ``Gateway.check`` and the audit
writer, consents in the side store, a refusal in the state store, calls to other numbers in between."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.audit import STORED_COLUMNS, AuditLog, row_hash
from gateway.config import load
from gateway.registry.sidestore import EntryKind, SideStore, default_path
from gateway.service import Gateway
from tests.conftest import write_sample

NUMBER = "+33612000010"
PARIS = ZoneInfo("Europe/Paris")
# (local day in Paris at 10:30, campaign): 10 calls to NUMBER, over three campaigns and three months.
CALLS = [(date(2026, 9, 1), "prospect"), (date(2026, 9, 8), "legacy"), (date(2026, 9, 15), "survey"),
         (date(2026, 9, 22), "prospect"), (date(2026, 10, 1), "prospect"), (date(2026, 10, 8), "prospect"),
         (date(2026, 10, 12), "legacy"), (date(2026, 10, 26), "prospect"), (date(2026, 11, 10), "survey"),
         (date(2026, 11, 24), "prospect")]
REFUSAL = datetime(2026, 10, 5, 14, 0, tzinfo=PARIS)  # on a call: ends the 20 Aug consent
CALLBACK = datetime(2026, 10, 20, 11, 0, tzinfo=PARIS)  # the callee asks to be called back: a new consent


def at(day: date, minute: int = 30) -> datetime:
    return datetime(day.year, day.month, day.day, 10, minute, tzinfo=PARIS).astimezone(UTC)


def config_dir(root: Path) -> Path:
    conf = write_sample(root)
    conf.write_text(conf.read_text().replace('state = "memory://"', 'state = "sqlite://state.db"\naudit = "audit.db"'))
    with SideStore(default_path(root)) as store:
        store.add("consent", 33612000010, EntryKind.CONSENT, date(2026, 8, 20), "web form A", "sha256:ab12cd",
                  now=datetime(2026, 8, 20, 18, 2, tzinfo=UTC))
        store.add("company-dnc", 33612000011, EntryKind.OPTOUT, date(2026, 9, 2), "call 7")  # another number
    return conf


async def _calls(conf: Path) -> list[str]:
    """Place the calls in time order (the refusal in its place); returns NUMBER's decision ids."""
    config = load(conf)
    now = [at(CALLS[0][0])]
    audit = AuditLog(config.gateway.audit, config.audit, clock=lambda: now[0].timestamp() + 0.2)  # type: ignore[arg-type]
    await audit.start()
    gw = Gateway(config, audit=audit, clock=lambda: now[0])
    await gw.start()
    gw.holder.load_all()
    ids = []
    try:
        for day, campaign in CALLS:
            # Each record is made when it happens, as in production: the side store decides at once.
            if day > REFUSAL.date() and now[0] < REFUSAL:
                now[0] = REFUSAL.astimezone(UTC)
                await gw.refusal(NUMBER, now=now[0], detail="agent 12")
            if day > CALLBACK.date() and now[0] < CALLBACK:
                now[0] = CALLBACK.astimezone(UTC)
                await gw.consent(NUMBER, source="callback request", evidence="rec-778", channel="call", now=now[0])
            now[0] = at(day, 29)
            await gw.check("0612000012", "prospect", now=now[0])  # another number, just before
            now[0] = at(day)
            outcome = await gw.check("06 12 00 00 10", campaign, channel=f"PJSIP/agent-{day.day:02d}", now=now[0])
            ids.append(outcome.decision_id)
            now[0] = at(day, 31)
            await gw.check("0612000001", "legacy", now=now[0])  # and another, just after
        now[0] += timedelta(seconds=1)
    finally:
        await gw.close()
        await audit.close()
    return ids


def make_history(root: Path) -> tuple[Path, list[str]]:
    """The sample config (state on disk, audit trail) with NUMBER's history; returns its path and the ids."""
    conf = config_dir(root)
    return conf, asyncio.run(_calls(conf))


def tamper(db: Path, decision_id: str, **changes: object) -> None:
    """Edit one audit row in place, as someone with write access to the file would."""
    conn = sqlite3.connect(str(db), isolation_level=None)
    sets = ", ".join(f"{k} = ?" for k in changes)
    conn.execute(f"UPDATE audit SET {sets} WHERE decision_id = ?", (*changes.values(), decision_id))
    conn.close()


def rehash(db: Path, decision_id: str, **changes: object) -> None:
    """Edit one audit row and recompute its own hash, as someone who knows the scheme would: the row then holds,
    and only its successor's ``prev_hash`` gives it away."""
    tamper(db, decision_id, **changes)
    conn = sqlite3.connect(str(db), isolation_level=None)
    row = conn.execute(f"SELECT seq, {', '.join(STORED_COLUMNS)}, prev_hash FROM audit WHERE decision_id = ?",
                       (decision_id,)).fetchone()
    seq, cols, written, prev = row[0], row[1:-2], row[-2], row[-1]
    conn.execute("UPDATE audit SET hash = ? WHERE seq = ?", (row_hash(prev, seq, cols, written), seq))
    conn.close()
