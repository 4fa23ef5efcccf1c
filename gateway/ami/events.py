"""Correlation of AMI call events with gateway decisions, with no I/O (the clock is an argument).

Why: the FastAGI check is only as good as the dialplan that calls it. Watching the manager
events tells us whether each call that reached the trunk had been screened. A call is tied to
its decision by the channel first (the AGI request carries ``agi_uniqueid`` and ``agi_channel``;
channels of one call share a ``Linkedid``; the ``DNC_DECISION_ID`` VarSet shows a decision made by
*any* gateway), and by the normalised number last, for decisions asked with no channel (HTTP API).

A ``DialBegin`` towards the trunk then yields one effect:

- :class:`Confirmed` — one of *our* ALLOW decisions covers it: the attempt really happened;
- :class:`Bypass` — no decision covers it (or the decision was BLOCK): a metric, a log line, and
  optionally an AMI ``Hangup``;
- nothing — already confirmed (a dialplan trying a second trunk), an emergency or short number,
  an internal call, or a call covered only by another gateway's decision (that gateway counts it).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from gateway.numbers import Kind, Number, mask

# Events whose headers move the state below; every other event is ignored cheaply.
WATCHED = frozenset({"Newchannel", "VarSet", "DialBegin", "DialState", "DialEnd", "Hangup"})

# Dialplan variables the FastAGI ``check`` route sets (DESIGN §7).
VERDICT_VAR = "DNC_VERDICT"
DECISION_VAR = "DNC_DECISION_ID"

# Header values as panoramisk hands them over: a repeated header becomes a list.
Headers = Mapping[str, "str | list[str]"]
Parse = Callable[[str], Number]


class BypassKind(enum.StrEnum):
    NO_DECISION = "no_decision"  # nothing screened this call
    BLOCKED = "blocked"  # the gateway said BLOCK and the call went out anyway
    OTHER_NUMBER = "other_number"  # the channel was screened for another number than the one dialled


class Decided(NamedTuple):
    """What the watcher needs of a gateway decision (``gateway.service.Outcome``), kept small.

    A NamedTuple rather than a frozen dataclass: one is built on every call, on the reply path,
    and a tuple is built several times faster.
    """

    decision_id: str
    key: int  # registry key of the number (0: none)
    campaign: str
    allow: bool  # the call may go out (ALLOW, including monitor mode's would-block)
    channel: str = ""
    uniqueid: str = ""


@dataclass(frozen=True, slots=True)
class Confirmed:
    decision_id: str
    campaign: str
    channel: str
    uniqueid: str
    masked: str


@dataclass(frozen=True, slots=True)
class Bypass:
    kind: BypassKind
    channel: str  # the dialling channel ("" for an originated call)
    dest_channel: str  # the trunk leg
    uniqueid: str
    linkedid: str
    masked: str  # the dialled number, masked (never the full number: this goes to logs and the live page)
    campaign: str  # of the BLOCK decision, else ""
    decision_id: str  # of the BLOCK decision, else ""

    @property
    def hangup_channel(self) -> str:
        """Hanging up the dialling channel ends the whole call, including any next trunk the dialplan would try."""
        return self.channel or self.dest_channel


Effect = Confirmed | Bypass


@dataclass(frozen=True, slots=True)
class BypassRecord:
    """A flagged bypass as the watcher keeps it for the supervisor page: masked already, so that nothing
    downstream (the page, ``/api/summary``, the SSE feed) ever holds a full number, even by mistake."""

    at: float  # wall-clock time it was flagged (epoch seconds)
    kind: BypassKind
    number: str  # masked
    channel: str  # the dialling channel, masked ("-" for an originated call)
    dest_channel: str  # the trunk leg, masked
    campaign: str  # of the BLOCK decision, else ""
    decision_id: str  # of the BLOCK decision, else ""
    hangup: bool  # the watcher hung the call up


@dataclass(slots=True, eq=False)
class _Decision:
    decision_id: str
    at: float
    key: int
    campaign: str
    allow: bool | None  # None: seen through a VarSet before (or without) its verdict
    own: bool  # made by this gateway (counted here) rather than only seen on the wire
    uniqueid: str
    channel: str
    linkedid: str = ""  # the call that consumed it, once confirmed


@dataclass(slots=True)
class _Channel:
    linkedid: str
    verdict: str = ""  # DNC_VERDICT seen on this channel, waiting for its DNC_DECISION_ID


def _preference(d: _Decision) -> tuple[bool, float]:
    """Ours first (it has the verdict and counts here), then the newest."""
    return d.own, d.at


def _header(h: Headers, name: str) -> str:
    v = h.get(name, "")
    if isinstance(v, list):
        return v[-1] if v else ""
    return v


def dialled_candidates(dial_string: str, dest_exten: str, dest_caller_num: str) -> list[str]:
    """Strings that may hold the dialled number, best first.

    ``DialString`` is what follows the technology in ``Dial()``: ``0612345678@trunk``,
    ``trunk/sip:0612345678@host``, ``0612345678@ctx/n`` (Local). ``DestExten`` and the trunk
    leg's caller number are what app_dial copied there (see the recording).
    """
    out: list[str] = []
    for piece in dial_string.split("/"):
        p = piece.strip()
        for scheme in ("sip:", "sips:", "tel:"):
            if p.lower().startswith(scheme):
                p = p[len(scheme):]
        p = p.split("@", 1)[0].split(";", 1)[0]
        if p:
            out.append(p)
    out.extend(s for s in (dest_exten, dest_caller_num) if s and s != "<unknown>")
    return out


class CallTracker:
    """Decisions and channels in memory, bounded in time (``grace``) and size (``max_entries``)."""

    def __init__(self, trunk_prefix: str, grace: float, parse: Parse, *, max_entries: int = 100_000) -> None:
        self.trunk_prefix = trunk_prefix
        self.grace = grace
        self.parse = parse
        self.max_entries = max_entries
        self._order: deque[_Decision] = deque()
        self._by_uid: dict[str, _Decision] = {}
        self._by_channel: dict[str, _Decision] = {}
        self._by_id: dict[str, _Decision] = {}
        self._by_key: dict[int, list[_Decision]] = {}
        self._channels: dict[str, _Channel] = {}  # uniqueid -> what we know of the channel
        self._members: dict[str, set[str]] = {}  # linkedid -> uniqueids of the call
        self.stats: dict[str, int] = {"events": 0, "dial_begins": 0, "confirmed": 0, "bypasses": 0}

    # -- inputs -------------------------------------------------------------------------------------

    def decided(self, d: Decided, now: float) -> None:
        """A decision of this gateway (called from ``Gateway.check``'s observers: must stay O(1))."""
        self._prune(now)
        dec = self._by_id.get(d.decision_id)
        if dec is None:
            dec = _Decision(d.decision_id, now, d.key, d.campaign, d.allow, True, d.uniqueid, d.channel)
            self._add(dec)
        else:  # already seen through its VarSet (unusual order, but two TCP streams race)
            if d.key and not dec.key:
                self._by_key.setdefault(d.key, []).append(dec)
            dec.key, dec.campaign, dec.allow, dec.own = d.key, d.campaign, d.allow, True
            dec.channel = dec.channel or d.channel
            if d.uniqueid and not dec.uniqueid:
                dec.uniqueid = d.uniqueid
            self._index(dec)

    def event(self, h: Headers, now: float) -> Effect | None:
        """One manager event in; at most one effect out."""
        name = _header(h, "Event")
        if name not in WATCHED:
            return None
        self.stats["events"] += 1
        self._prune(now)
        uid = _header(h, "Uniqueid")
        if uid:
            self._see_channel(uid, _header(h, "Linkedid"))
        if name == "VarSet":
            self._varset(h, uid, now)
        elif name == "DialBegin":
            dest_uid = _header(h, "DestUniqueid")
            if dest_uid:
                self._see_channel(dest_uid, _header(h, "DestLinkedid"))
            return self._dial_begin(h, now)
        elif name == "Hangup" and uid:
            self._forget_channel(uid)
        return None

    def reset_channels(self) -> None:
        """After a reconnection: Hangups were missed, so the channel table may hold dead channels."""
        self._channels.clear()
        self._members.clear()

    @property
    def sizes(self) -> dict[str, int]:
        return {"decisions": len(self._order), "channels": len(self._channels), "calls": len(self._members)}

    # -- state --------------------------------------------------------------------------------------

    def _add(self, dec: _Decision) -> None:
        self._order.append(dec)
        self._by_id[dec.decision_id] = dec
        self._index(dec)
        if dec.key:
            self._by_key.setdefault(dec.key, []).append(dec)
        if len(self._order) > self.max_entries:
            self._drop(self._order.popleft())

    def _index(self, dec: _Decision) -> None:
        # A decision seen only on the wire never hides one of ours for the same channel: ours has the
        # verdict, the number and the campaign, and is the one this gateway must confirm.
        for table, k in ((self._by_uid, dec.uniqueid), (self._by_channel, dec.channel)):
            if k:
                cur = table.get(k)
                if cur is None or dec.own or not cur.own:
                    table[k] = dec

    def _drop(self, dec: _Decision) -> None:
        if self._by_id.get(dec.decision_id) is dec:
            del self._by_id[dec.decision_id]
        if dec.uniqueid and self._by_uid.get(dec.uniqueid) is dec:
            del self._by_uid[dec.uniqueid]
        if dec.channel and self._by_channel.get(dec.channel) is dec:
            del self._by_channel[dec.channel]
        if dec.key:
            same = self._by_key.get(dec.key)
            if same is not None:
                same[:] = [x for x in same if x is not dec]
                if not same:
                    del self._by_key[dec.key]

    def _prune(self, now: float) -> None:
        # Decisions arrive in clock order, so the oldest are on the left.
        limit = now - self.grace
        while self._order and self._order[0].at < limit:
            self._drop(self._order.popleft())

    def _see_channel(self, uid: str, linkedid: str) -> None:
        ch = self._channels.get(uid)
        linkedid = linkedid or uid
        if ch is None:
            if len(self._channels) >= self.max_entries:  # Hangups missed: evict the oldest
                old = next(iter(self._channels))
                self._forget_channel(old)
            self._channels[uid] = _Channel(linkedid)
        elif ch.linkedid != linkedid:  # linkedids can change on bridges and transfers
            self._unlink(uid, ch.linkedid)
            ch.linkedid = linkedid
        else:
            return
        self._members.setdefault(linkedid, set()).add(uid)

    def _unlink(self, uid: str, linkedid: str) -> None:
        members = self._members.get(linkedid)
        if members is not None:
            members.discard(uid)
            if not members:
                del self._members[linkedid]

    def _forget_channel(self, uid: str) -> None:
        ch = self._channels.pop(uid, None)
        if ch is not None:
            self._unlink(uid, ch.linkedid)

    def _varset(self, h: Headers, uid: str, now: float) -> None:
        var = _header(h, "Variable")
        if var not in (VERDICT_VAR, DECISION_VAR) or not uid:
            return
        value = _header(h, "Value")
        ch = self._channels[uid]  # _see_channel ran for this uid
        if var == VERDICT_VAR:
            ch.verdict = value
            dec = self._by_uid.get(uid)
            if dec is not None and not dec.own:
                dec.allow = value == "ALLOW"
            return
        if not value:
            return
        dec = self._by_id.get(value)
        if dec is not None and (dec.own or dec.uniqueid == uid):
            # Ours (perhaps asked without agi_uniqueid): the VarSet ties it to the channel.
            dec.uniqueid = dec.uniqueid or uid
            self._by_uid[uid] = dec
            return
        cur = self._by_uid.get(uid)
        if cur is not None and cur.own:
            return
        # Another gateway decided (or our decided() has not run yet; it will then take over).
        self._add(_Decision(value, now, 0, "", (ch.verdict == "ALLOW") if ch.verdict else None, False, uid,
                            _header(h, "Channel")))

    # -- the decision that covers a dial --------------------------------------------------------------

    def _dial_begin(self, h: Headers, now: float) -> Effect | None:
        dest = _header(h, "DestChannel")
        to_trunk = bool(self.trunk_prefix) and dest.startswith(self.trunk_prefix)
        number: Number | None = None
        for cand in dialled_candidates(_header(h, "DialString"), _header(h, "DestExten"),
                                       _header(h, "DestCallerIDNum")):
            n = self.parse(cand)
            if n.kind is Kind.EMERGENCY or n.kind is Kind.SHORT:
                return None  # never screened, never hung up (RULES: emergency numbers always go through)
            if n.is_valid:
                number = n
                break
        if not to_trunk and number is None:
            return None  # an internal call
        self.stats["dial_begins"] += 1
        channel = _header(h, "Channel")
        uid = _header(h, "Uniqueid")
        linkedid = _header(h, "Linkedid") or uid or _header(h, "DestLinkedid")
        key = number.key if number is not None else 0
        masked = number.masked if number is not None else mask(_header(h, "DestExten") or "?")
        limit = now - self.grace

        # Candidates tied to the call, newest first; then decisions on the same number not used by another call.
        tied: list[_Decision] = []
        uids = {uid, linkedid, _header(h, "DestUniqueid")} | self._members.get(linkedid, set())
        for u in uids:
            dec = self._by_uid.get(u)
            if dec is not None:
                tied.append(dec)
        dec = self._by_channel.get(channel) if channel else None
        if dec is not None and dec not in tied:
            tied.append(dec)
        tied = sorted((d for d in tied if d.at >= limit), key=_preference, reverse=True)
        matching = [d for d in tied if not (d.key and key and d.key != key)]
        if not matching and key:
            matching = sorted((d for d in self._by_key.get(key, ()) if d.at >= limit
                               and d.linkedid in ("", linkedid)), key=_preference, reverse=True)
        if not matching:
            kind = BypassKind.OTHER_NUMBER if tied else BypassKind.NO_DECISION
            self.stats["bypasses"] += 1
            return Bypass(kind, channel, dest, uid, linkedid, masked, "", "")
        best = matching[0]
        if best.allow is False:
            self.stats["bypasses"] += 1
            return Bypass(BypassKind.BLOCKED, channel, dest, uid, linkedid, masked, best.campaign,
                          best.decision_id)
        if best.linkedid or not best.own:
            best.linkedid = best.linkedid or linkedid
            return None  # already counted (second trunk tried), or another gateway's to count
        best.linkedid = linkedid
        self.stats["confirmed"] += 1
        return Confirmed(best.decision_id, best.campaign, channel, uid, masked)
