"""Reading a dossier's sources from a loaded gateway: side store, lists, audit trail, state store (the I/O part).

The files (side store, audit database) are read in a worker thread, read-only for the audit trail; the state
store's history is awaited on the caller's loop (Redis needs one). The CLI and the API both come here, so
``dnc-gateway proof`` and ``GET /api/proof`` give the same dossier.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from gateway.audit import AuditReader
from gateway.numbers import Number
from gateway.policy.engine import Call, limits
from gateway.proof.dossier import AuditPart, CampaignFacts, Dossier, ListState, PurgeAfter, Sources, assemble
from gateway.proof.summary import summarise
from gateway.registry.sidestore import Entry, SideStore, default_path
from gateway.service import Gateway
from gateway.state.model import History


@dataclass(frozen=True, slots=True)
class Request:
    """What the dossier covers: one number (parsed), an optional period (``since`` inclusive, ``until`` not)."""

    number: Number
    since: datetime | None = None
    until: datetime | None = None
    whole_chain: bool = False  # also walk the whole audit trail (slow on years of calls)
    audit: bool = True  # read the audit trail (``registry proof`` does not)
    side_store: Path | None = None  # default: the gateway's, DATA_DIR/registry-side.db


def _safe_url(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//", url)


def campaign_facts(gw: Gateway, number: Number) -> dict[str, CampaignFacts]:
    """Each campaign's consent list, caps and consent lifetime, as the engine reads them for this number's law
    (the callee's country picks the pack; none: no cap, no cooldown)."""
    out = {}
    for name, c in gw.config.campaigns.items():
        pack = gw.engine.pack_for(number, c)
        max_attempts, window, cooldown = limits(c, pack) if pack is not None else (None, None, None)
        out[name] = CampaignFacts(name, c.consent, max_attempts, window, cooldown, c.consent_max_age_days)
    return out


def list_states(gw: Gateway, number: Number) -> list[ListState]:
    regs = gw.holder.current
    out = []
    for name, spec in sorted(gw.holder.specs.items()):
        lst = regs.get(name)
        if lst is None:
            out.append(ListState(name, str(spec.kind), "not loaded", None, None))
            continue
        out.append(ListState(name, str(lst.kind), lst.meta.version,
                             lst.meta.as_of.isoformat() if lst.meta.as_of else None, number.key in lst,
                             lst.meta.source))
    return out


def _read_files(side: Path, audit: Path | None, request: Request, retention: tuple[int, int],
                ) -> tuple[list[Entry], dict[int, date | None], AuditPart | None]:
    entries: list[Entry] = []
    purges: dict[int, date | None] = {}
    if side.is_file():
        proof_years, max_age_days = retention
        with SideStore(side, proof_years=proof_years, max_age_days=max_age_days) as store:
            entries = store.entries(request.number.key)
            purges = {e.id: store.purge_after(e) for e in entries}
    part = None
    if audit is not None and request.audit:
        with AuditReader(audit) as reader:
            rows, meta = reader.checked(request.number.e164,
                                        since=request.since.timestamp() if request.since else None,
                                        until=request.until.timestamp() if request.until else None)
            whole = reader.verify() if request.whole_chain else None
        part = AuditPart(str(audit), rows, meta, whole)
    return entries, purges, part


async def gather(gw: Gateway, request: Request, now: datetime, *,
                 purge_after: PurgeAfter | None = None) -> Sources:
    """The sources of ``request``'s dossier; raises AuditError (an unreadable audit database) and
    StateUnavailable (the state store cannot answer) for the caller to report."""
    g = gw.config.gateway
    side = request.side_store or default_path(g.data_dir)
    number = request.number
    # The side store's own retention (``consent_proof_years`` after the consent ends), as the gateway purges it.
    retention = (gw.holder.proof_years, gw.holder.max_age_days)
    entries, purges, audit = await asyncio.to_thread(_read_files, side, g.audit, request, retention)
    if purge_after is None:
        purge_after = lambda e: purges.get(e.id)  # noqa: E731
    history: History = await gw.state.history(gw.professional, number.key)
    zone = number.zones[0] if number.zones else g.timezone
    regs = gw.holder.current
    outlook = {name: gw.engine.decide(Call(number, name), regs, history, now).as_json()
               for name in sorted(gw.config.campaigns)}
    return Sources(number=number.e164, key=number.key, zone=zone, generated_at=now, entries=entries,
                   lists=list_states(gw, number), campaigns=campaign_facts(gw, number), audit=audit, history=history,
                   state_store=_safe_url(g.state), since=request.since, until=request.until, side_store=str(side),
                   purge_after=purge_after, outlook=outlook,
                   retention=f"consent proof kept {gw.holder.proof_years} years after the consent ends "
                             f"(consent_proof_years), audit trail {gw.config.audit.retention_days} days "
                             f"(retention_days)")


async def dossier(gw: Gateway, request: Request, now: datetime, *, purge_after: PurgeAfter | None = None) -> Dossier:
    """The dossier of ``request``, summary included."""
    return assemble(await gather(gw, request, now, purge_after=purge_after), summarise)
