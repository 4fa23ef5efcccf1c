"""The proof dossier of one number, assembled from values (pure: no I/O, no clock; ``gather`` reads the sources).

What it holds, for one number and an optional period: every consent and revocation recorded with its proof
(the side store's entries, as :meth:`Entry.as_json` gives them: new fields appear as they are added), the opt-outs,
which lists hold the number and in which version, every decision the audit trail holds for it (time, campaign,
verdict, reason, rule, the list versions consulted, decision id), each checked against the hash chain, what each
allowed call rested on (the consent in force on the callee's day, or an exemption, ...), the refusal, opt-out and
attempts the state store counts, the caps, and a plain-language summary in French and English.

The JSON form (:meth:`Dossier.as_json`) is a stable contract, ``schema`` names its version: keys are only ever
added. Nothing here masks the number: the dossier is for the admin token and the command line only, and says so.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.audit import STORED_COLUMNS, Link, RecordCheck, Verification, iso_time
from gateway.registry.sidestore import LIVE_LIST, Entry, EntryKind
from gateway.state.model import History

SCHEMA = "dnc-gateway/proof-dossier/1"
NUMBER_NOTICE = ("The number is shown in full: this dossier is personal data, produced by an admin-only command or "
                 "route (the admin token). Keep it as such.")
NOT_CONFIGURED = "retention: not configured"
WRITTEN_APART = 60.0  # seconds between a decision and its record's writing beyond which the dossier shows both
DRY_RUN = "dry_run"  # audit source of decisions no call followed (FastAGI's dryrun route): not counted as calls

# When a record will be purged: plugged in by the retention settings (issue 13 item 6); None until then.
PurgeAfter = Callable[[Entry], date | None]


class Ground(enum.StrEnum):
    """What an allowed call rested on, as the dossier reads it from the decision and the consent records."""

    CONSENT = "consent"  # a dated consent record in force on the callee's day
    CONSENT_LIST = "consent_list"  # on the consent list, but no dated consent record in force that day
    EXEMPT = "exempt"  # an exemption (contract, category, B2B) or an emergency number
    MONITOR = "monitor"  # monitor mode: allowed although the rules would have blocked it
    NOT_LISTED = "not_listed"  # opposition regime: on none of the lists consulted
    NO_LIST = "no_list_applies"  # no list regime on that date
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class ListState:
    """One configured list as it stands now: does it hold the number, in which version."""

    name: str
    kind: str
    version: str
    as_of: str | None
    member: bool | None  # None: the list is not loaded
    source: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "version": self.version, "as_of": self.as_of,
                "member": self.member, "source": self.source}


@dataclass(frozen=True, slots=True)
class CampaignFacts:
    """What the dossier needs of a campaign's settings: its consent list, its caps, its consent lifetime.

    ``consent_max_age_days``: None when the setting does not exist (before issue 13 item 2), 0 for no limit.
    """

    name: str
    consent_list: str
    max_attempts: int | None  # None: no calendar cap under the number's law (the US, Canada, the UK)
    window_days: int | None
    cooldown_days: int | None  # None: no cooldown after a refusal under the number's law
    consent_max_age_days: int | None = None

    @property
    def cap_text(self) -> str:
        if self.max_attempts is None or self.window_days is None:
            return "no calendar cap"
        return f"{self.max_attempts} calls or attempts in {self.window_days} days"

    @property
    def cooldown_text(self) -> str:
        return "none" if self.cooldown_days is None else f"{self.cooldown_days} days"

    def as_json(self) -> dict[str, Any]:
        return {"campaign": self.name, "consent_list": self.consent_list or None, "max_attempts": self.max_attempts,
                "window_days": self.window_days, "cooldown_days": self.cooldown_days,
                "consent_max_age_days": self.consent_max_age_days}


@dataclass(frozen=True, slots=True)
class AuditPart:
    """The audit trail's answer for the number: its rows (``seq, *STORED_COLUMNS, prev_hash, hash``), each with
    its chain check, and the meta they were checked against."""

    path: str
    rows: Sequence[tuple[Sequence[Any], RecordCheck]]
    meta: Mapping[str, str]
    whole: Verification | None = None  # the whole trail walked, when asked


@dataclass(frozen=True, slots=True)
class Sources:
    """Everything the dossier is made of, read by ``gather`` (or built by a test)."""

    number: str  # E.164
    key: int
    zone: str  # the callee's time zone: days are the callee's, as the rules count them
    generated_at: datetime
    entries: Sequence[Entry] = ()
    lists: Sequence[ListState] = ()
    campaigns: Mapping[str, CampaignFacts] = field(default_factory=dict)
    audit: AuditPart | None = None
    history: History | None = None
    state_store: str = ""
    since: datetime | None = None
    until: datetime | None = None
    side_store: str = ""
    purge_after: PurgeAfter | None = None
    retention: str = ""  # the retention rules in words (consent proof, audit trail), when configured
    # How each campaign would decide a call now, with this history (what ``registry proof`` showed): check --json.
    outlook: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordLine:
    """A consent or opt-out record, with its status and, once retention is configured, when it will be purged."""

    entry: Mapping[str, Any]  # Entry.as_json()
    active: bool
    purge_after: date | None
    calls: int  # allowed calls of the dossier that rested on it

    def as_json(self) -> dict[str, Any]:
        return {**self.entry, "status": "active" if self.active else "revoked",
                "purge_after": self.purge_after.isoformat() if self.purge_after else None,
                "allowed_calls": self.calls}


@dataclass(frozen=True, slots=True)
class DecisionLine:
    """One audited decision, as the trail holds it, checked against the chain, with what an ALLOW rested on."""

    seq: int
    decision_id: str
    at: float
    local_time: str  # in the callee's zone, with its offset
    campaign: str
    verdict: str
    reason: str | None
    rule: str
    would_block: bool
    mode: str
    regime: str
    lists: Mapping[str, str] | str  # name -> version; the raw text when a tampered row holds no JSON
    source: str
    channel: str
    detail: str
    written_time: str | None
    link: Link
    problem: str
    ground: Ground
    consent_id: int | None = None
    valid_until: date | None = None
    # When the record was written, in the callee's zone, when that is far from the decision time (a decision
    # recorded with ``check --record --at``, a late commit): None when they are the same moment.
    written_local: str | None = None

    @property
    def time(self) -> str:
        return iso_time(self.at)

    @property
    def call(self) -> bool:
        return self.source != DRY_RUN

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "decision_id": self.decision_id, "at": self.at, "time": self.time,
                "local_time": self.local_time, "campaign": self.campaign, "verdict": self.verdict,
                "reason": self.reason, "rule": self.rule, "would_block": self.would_block, "mode": self.mode,
                "regime": self.regime, "lists": dict(self.lists) if isinstance(self.lists, Mapping) else self.lists,
                "source": self.source, "channel": self.channel, "detail": self.detail,
                "written_time": self.written_time, "chain": {"status": str(self.link), "problem": self.problem},
                "ground": str(self.ground), "consent_id": self.consent_id,
                "valid_until": self.valid_until.isoformat() if self.valid_until else None,
                "written_local_time": self.written_local}


@dataclass(frozen=True, slots=True)
class Dossier:
    number: str
    zone: str
    generated_at: datetime
    since: datetime | None
    until: datetime | None
    consents: tuple[RecordLine, ...]
    optouts: tuple[RecordLine, ...]
    lists: tuple[ListState, ...]
    campaigns: tuple[CampaignFacts, ...]
    decisions: tuple[DecisionLine, ...]
    audit: AuditPart | None
    history: History | None
    state_store: str
    side_store: str
    retention_configured: bool
    retention_text: str = ""
    outlook: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    summary: Mapping[str, str] = field(default_factory=dict)  # "en", "fr"

    @property
    def calls(self) -> tuple[DecisionLine, ...]:
        return tuple(d for d in self.decisions if d.call)

    @property
    def broken(self) -> tuple[DecisionLine, ...]:
        return tuple(d for d in self.decisions if d.link is not Link.INTACT)

    def attempts(self) -> tuple[datetime, ...]:
        """The attempts the state store counts, within the dossier's period."""
        if self.history is None:
            return ()
        return tuple(t for t in self.history.attempts
                     if (self.since is None or t >= self.since) and (self.until is None or t < self.until))

    def counts(self) -> dict[str, Any]:
        calls = self.calls
        return {
            "decisions": len(self.decisions),
            "calls": len(calls),
            "dry_runs": len(self.decisions) - len(calls),
            "allowed": sum(d.verdict == "ALLOW" for d in calls),
            "blocked": sum(d.verdict == "BLOCK" for d in calls),
            "would_block": sum(d.verdict == "ALLOW" and d.would_block for d in calls),
            "by_campaign": dict(sorted(Counter(d.campaign for d in calls).items())),
            "blocked_by_reason": dict(sorted(Counter(d.reason or "" for d in calls if d.verdict == "BLOCK").items())),
            "allowed_by_ground": dict(sorted(Counter(str(d.ground) for d in calls if d.verdict == "ALLOW").items())),
            "attempts_counted": len(self.attempts()),
            "chain_problems": len(self.broken),
        }

    def chain_json(self) -> dict[str, Any] | None:
        if self.audit is None:
            return None
        meta = self.audit.meta
        whole = self.audit.whole
        return {"database": self.audit.path, "checked": len(self.decisions), "intact": len(self.decisions)
                - len(self.broken), "problems": [{"seq": d.seq, "decision_id": d.decision_id, "status": str(d.link),
                                                  "problem": d.problem} for d in self.broken],
                "head_seq": int(meta.get("head_seq", 0)), "head_hash": meta.get("head_hash"),
                "anchor_seq": int(meta.get("anchor_seq", 0)), "anchor_at": meta.get("anchor_at") or None,
                "whole_trail": None if whole is None else {"ok": whole.ok, "message": whole.message}}

    def state_json(self) -> dict[str, Any] | None:
        h = self.history
        if h is None:
            return None
        return {"store": self.state_store,
                "opted_out_at": h.opted_out_at.isoformat() if h.opted_out_at else None,
                "last_refusal": h.last_refusal.isoformat() if h.last_refusal else None,
                "attempts": [t.isoformat() for t in self.attempts()],
                "attempts_kept": len(h.attempts)}

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "number": self.number,
            "number_notice": NUMBER_NOTICE,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "zone": self.zone,
            "period": {"since": self.since.isoformat() if self.since else None,
                       "until": self.until.isoformat() if self.until else None},
            "summary": dict(self.summary),
            "counts": self.counts(),
            "consents": [c.as_json() for c in self.consents],
            "optouts": [c.as_json() for c in self.optouts],
            "lists": [lst.as_json() for lst in self.lists],
            "campaigns": [c.as_json() for c in self.campaigns],
            "decisions": [d.as_json() for d in self.decisions],
            "chain": self.chain_json(),
            "state": self.state_json(),
            "now": {"at": self.generated_at.isoformat(timespec="seconds"),
                    "decisions": {k: dict(v) for k, v in self.outlook.items()}},
            "side_store": self.side_store,
            "retention": {"configured": self.retention_configured,
                          "text": (self.retention_text or None) if self.retention_configured else NOT_CONFIGURED},
        }


# -- assembly ----------------------------------------------------------------------------------------------

_EXEMPT = frozenset({"emergency", "exempt_contract", "exempt_category", "exempt_b2b"})


def local_day(entry: Entry, tz: ZoneInfo | None) -> date | None:
    """The collection day in the callee's calendar (the rules count it so): the instant's, when the record has
    one, read in ``tz``; else the recorded day."""
    if entry.collected_at is not None and tz is not None:
        return entry.collected_at.astimezone(tz).date()
    return entry.given_on


def revoked_day(entry: Entry, tz: ZoneInfo | None) -> date | None:
    if entry.revoked_at is not None and tz is not None:
        return entry.revoked_at.astimezone(tz).date()
    return entry.revoked_on


def valid_until(entry: Entry, facts: CampaignFacts | None, tz: ZoneInfo | None = None) -> date | None:
    """The last day a consent is valid under a campaign's lifetime; None without a lifetime (or without one set).

    Valid at most ``consent_max_age_days`` from collection (its day in the callee's calendar, ``tz``): the last
    valid day is collection + days - 1, as the engine counts it.
    """
    days = facts.consent_max_age_days if facts is not None else None
    given = local_day(entry, tz)
    if not days or given is None:  # no lifetime, or an undated consent: no end date to give
        return None
    return given + timedelta(days=days - 1)


def consent_in_force(entries: Sequence[Entry], lists: set[str], when: date | datetime,
                     facts: CampaignFacts | None, tz: ZoneInfo | None = None) -> Entry | None:
    """The newest consent of ``lists`` given by ``when``, not revoked by then and not expired.

    ``when`` is the decision's instant (with ``tz``, the callee's zone) or a day. At an instant, a record's own
    instants are compared as instants: a consent withdrawn later the same day (a callee who says "stop" during
    the call) was in force at the call, and one collected after the call was not. A consent recorded at a call or
    over the API (``LIVE_LIST``) counts for every list; an undated one counts (the campaign's ``undated_consent``
    decided whether that was enough) after every dated one.
    """
    instant = when if isinstance(when, datetime) else None
    local = instant.astimezone(tz) if instant is not None and tz is not None else instant
    day = local.date() if local is not None else when
    best = None
    best_key: tuple[date, datetime, int] | None = None
    for e in entries:
        if e.kind is not EntryKind.CONSENT or (e.list not in lists and e.list != LIVE_LIST):
            continue
        given = local_day(e, tz)
        if instant is not None and e.collected_at is not None:
            if e.collected_at > instant:
                continue
        elif given is not None and given > day:
            continue
        if instant is not None and e.revoked_at is not None:
            if e.revoked_at <= instant:
                continue
        elif (revoked := revoked_day(e, tz)) is not None and revoked <= day:
            continue
        until = valid_until(e, facts, tz)
        if until is not None and day > until:
            continue
        key = (given or date.min, e.collected_at or datetime.min.replace(tzinfo=UTC), e.id)
        if best_key is None or key > best_key:
            best, best_key = e, key
    return best


def _in_zone(e: Entry, tz: ZoneInfo) -> dict[str, Any]:
    """An entry's JSON with its days in the callee's calendar (one date and one zone throughout the dossier): the
    collection and withdrawal days of a record that has their instants are those instants' days in ``tz``."""
    j = e.as_json()
    given, revoked = local_day(e, tz), revoked_day(e, tz)
    if given is not None:
        j["given_on"] = given.isoformat()
    if revoked is not None:
        j["revoked_on"] = revoked.isoformat()
    for key, value in (("collected_at", e.collected_at), ("revoked_at", e.revoked_at)):
        if value is not None:
            j[key] = value.astimezone(tz).isoformat(timespec="seconds")
    return j


def _lists(raw: object) -> Mapping[str, str] | str:
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    return str(raw)


def _line(row: Sequence[Any], check: RecordCheck, s: Sources, tz: ZoneInfo) -> DecisionLine:
    d = dict(zip(("seq", *STORED_COLUMNS), row[:-2], strict=True))
    raw = d["lists"]
    try:  # a tampered row may hold anything there: show it as it is (its chain check says it was changed)
        lists = _lists(json.loads(raw)) if isinstance(raw, str) else _lists(raw)
    except ValueError:
        lists = str(raw)
    at = d["at"] if isinstance(d["at"], int | float) else 0.0
    local = datetime.fromtimestamp(at, UTC).astimezone(tz)
    verdict, reason = str(d["verdict"]), d["reason"]
    campaign = str(d["campaign"])
    facts = s.campaigns.get(campaign)
    ground, consent_id, until = Ground.BLOCKED, None, None
    if verdict == "ALLOW":
        if reason in _EXEMPT:
            ground = Ground.EXEMPT
        elif d["would_block"]:
            ground = Ground.MONITOR
        elif d["regime"] == "consent":
            names = {facts.consent_list} if facts is not None and facts.consent_list else set(
                lists if isinstance(lists, Mapping) else ())
            entry = consent_in_force(s.entries, names, local, facts, tz)
            if entry is None:
                ground = Ground.CONSENT_LIST
            else:
                ground, consent_id, until = Ground.CONSENT, entry.id, valid_until(entry, facts, tz)
        elif d["regime"] == "opposition":
            ground = Ground.NOT_LISTED
        else:
            ground = Ground.NO_LIST
    written = d.get("written_at")
    written_local = None
    if isinstance(written, int | float) and abs(written - at) > WRITTEN_APART:
        written_local = datetime.fromtimestamp(written, UTC).astimezone(tz).isoformat(timespec="seconds")
    return DecisionLine(
        int(d["seq"]), str(d["decision_id"]), float(at), local.isoformat(timespec="seconds"), campaign, verdict,
        None if reason is None else str(reason), str(d["rule"]), bool(d["would_block"]), str(d["mode"]),
        str(d["regime"]), lists, str(d["source"]), str(d["channel"] or ""), str(d["detail"] or ""),
        iso_time(written) if isinstance(written, int | float) else None, check.link, check.problem, ground,
        consent_id, until, written_local)


def assemble(s: Sources, summarise: Callable[[Dossier], Mapping[str, str]] | None = None) -> Dossier:
    """The dossier of ``s``; ``summarise`` writes its summary (``gateway.proof.summary.summarise``)."""
    tz = ZoneInfo(s.zone)
    rows = s.audit.rows if s.audit is not None else ()
    decisions = tuple(_line(row, check, s, tz) for row, check in rows)
    used = Counter(d.consent_id for d in decisions if d.consent_id is not None and d.call)
    purge = s.purge_after

    def record(e: Entry) -> RecordLine:
        return RecordLine(_in_zone(e, tz), e.active, purge(e) if purge is not None else None, used.get(e.id, 0))

    dossier = Dossier(
        number=s.number, zone=s.zone, generated_at=s.generated_at, since=s.since, until=s.until,
        consents=tuple(record(e) for e in s.entries if e.kind is EntryKind.CONSENT),
        optouts=tuple(record(e) for e in s.entries if e.kind is EntryKind.OPTOUT),
        lists=tuple(s.lists), campaigns=tuple(s.campaigns[n] for n in sorted(s.campaigns)), decisions=decisions,
        audit=s.audit, history=s.history, state_store=s.state_store, side_store=s.side_store,
        retention_configured=purge is not None, retention_text=s.retention, outlook=s.outlook)
    if summarise is None:
        return dossier
    return replace(dossier, summary=dict(summarise(dossier)))
