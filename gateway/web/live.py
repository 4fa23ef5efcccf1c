"""The live feed behind the supervisor page: a board of recent blocks, and its fan-out over SSE.

``Board`` is the pure part: it folds decisions into per-minute counts by
campaign and reason and a short list of the latest blocks, and hands out what
changed since the last tick. It only ever stores *masked* numbers, so nothing
downstream (SSE, ``/api/summary``) can leak one.

``LiveHub`` is the asyncio adapter. Decisions arrive on the hot path at
thousands a second; browsers get at most one ``tick`` per interval with what
changed, whatever the call rate. Each client has a small bounded queue; a client
that does not keep up (a laptop gone to sleep, a wall screen on a bad link) is
dropped rather than allowed to grow memory: its EventSource reconnects and
starts again from a fresh summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.aio import cancel
from gateway.audit.record import Source
from gateway.numbers import mask, mask_digits
from gateway.policy.decision import Basis, Verdict

if TYPE_CHECKING:
    from gateway.service import Outcome

log = logging.getLogger(__name__)

WINDOW_MINUTES = 60
LATEST = 50
UNKNOWN = "unknown"
# Dry runs are not calls: ``/api/check`` and FastAGI's ``dryrun`` route (what ``dnc-gateway replay`` uses by
# default) stay out of the supervisor's view; they are in /metrics with source="api" / "dry_run".
NOT_CALLS = frozenset({Source.API.value, Source.DRY_RUN.value})

SENT_MAX = 40  # characters of a campaign name the dialplan sent, as the page shows it next to "unknown"

Key = tuple[str, str, bool]  # campaign, reason, would_block (monitor mode)


def sent_campaign(name: str) -> str:
    """What a dialplan sent as the campaign name, fit for the page: printable, digit runs masked, truncated.

    Shown only on the latest-blocks list (never a label nor a count key: the board's figures stay bounded).
    It comes from the dialplan, so it may be anything: a number by mistake, a control character, a novel.
    """
    text = "".join(c if c.isprintable() else "?" for c in mask_digits(name))
    return text if len(text) <= SENT_MAX else text[: SENT_MAX - 1] + "…"


def minute_of(at: float) -> int:
    return int(at // 60) * 60


@dataclass
class Board:
    """Per-minute block counts (last hour), totals since start, and the latest blocks, masked."""

    campaigns: frozenset[str]
    window: int = WINDOW_MINUTES
    latest_size: int = LATEST
    totals: Counter[str] = field(default_factory=Counter)
    minutes: dict[int, Counter[Key]] = field(default_factory=dict)
    latest: deque[dict[str, Any]] = field(default_factory=deque)
    _touched: set[int] = field(default_factory=set)
    _new: list[dict[str, Any]] = field(default_factory=list)
    _dirty: bool = False

    def add(self, outcome: Outcome) -> None:
        rec = outcome.record
        if rec.source in NOT_CALLS:
            return
        d = outcome.decision
        self._dirty = True
        self.totals["decisions"] += 1
        blocked = d.verdict is Verdict.BLOCK
        if not blocked and not d.would_block:
            self.totals["allowed"] += 1
            if d.basis is Basis.CONSENT_UNDATED:  # no proof of consent: the supervisor must see how many
                self.totals["undated_consent"] += 1
            return
        self.totals["blocked" if blocked else "would_block"] += 1
        campaign = d.campaign if d.campaign in self.campaigns else UNKNOWN
        reason = str(d.reason) if d.reason is not None else "none"
        minute = minute_of(rec.at)
        bucket = self.minutes.get(minute)
        if bucket is None:
            bucket = self.minutes[minute] = Counter()
            self._prune(minute)
        bucket[(campaign, reason, not blocked)] += 1
        self._touched.add(minute)
        item = {
            "id": outcome.decision_id, "at": rec.at, "campaign": campaign, "reason": reason, "rule": d.rule,
            "number": outcome.number.masked or mask(rec.number), "would_block": not blocked, "mode": d.mode,
            "source": rec.source,
        }
        if campaign == UNKNOWN and rec.campaign and rec.campaign != UNKNOWN:
            # A wrong name in the dialplan: the supervisor needs to see which one to fix it.
            item["campaign_sent"] = sent_campaign(rec.campaign)
        self.latest.appendleft(item)
        while len(self.latest) > self.latest_size:
            self.latest.pop()
        self._new.append(item)
        if len(self._new) > self.latest_size:
            del self._new[: len(self._new) - self.latest_size]

    def reconfigure(self, campaigns: frozenset[str]) -> bool:
        """Follow a reload (SIGHUP): campaign names on the board are always those configured now.

        Blocks of a campaign the reload removed stay counted, under ``unknown`` (the name a call for it now
        gets), so that the hour's figures do not change and the names shown stay the configured ones. True
        when something already shown changed: the page then needs a fresh summary.
        """
        removed = self.campaigns - campaigns
        self.campaigns = campaigns
        changed = False
        for bucket in self.minutes.values():
            for key in [k for k in bucket if k[0] in removed]:
                bucket[(UNKNOWN, key[1], key[2])] += bucket.pop(key)
                changed = True
        for item in self.latest:  # the same dicts as in _new: both follow
            if item["campaign"] in removed:
                # Not shown as sent: it was a configured name then, and the page shows only names configured now.
                item["campaign"] = UNKNOWN
                changed = True
        return changed

    def _prune(self, newest: int) -> None:
        horizon = newest - self.window * 60
        for m in [m for m in self.minutes if m <= horizon]:
            del self.minutes[m]
            self._touched.discard(m)

    def _buckets(self, minutes: Iterable[int]) -> dict[str, list[list[Any]]]:
        return {str(m): [[c, r, w, n] for (c, r, w), n in sorted(self.minutes[m].items())]
                for m in sorted(minutes) if m in self.minutes}

    def snapshot(self) -> dict[str, Any]:
        return {"totals": self._totals(), "buckets": self._buckets(self.minutes), "latest": list(self.latest)}

    def drain(self) -> dict[str, Any] | None:
        """What changed since the last drain (absolute counts of the touched minutes), or None."""
        if not self._dirty:
            return None
        delta = {"totals": self._totals(), "buckets": self._buckets(self._touched), "latest": self._new[::-1]}
        self._touched = set()
        self._new = []
        self._dirty = False
        return delta

    def _totals(self) -> dict[str, int]:
        return {k: self.totals[k] for k in ("decisions", "allowed", "blocked", "would_block", "undated_consent")}


def sse_event(event: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event; compact JSON never contains a newline, so one ``data:`` line is enough."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n".encode()


SSE_HEARTBEAT = b": keep-alive\n\n"


class Client:
    __slots__ = ("closed", "queue")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)
        self.closed = False

    def offer(self, payload: bytes) -> bool:
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:
            return False
        return True

    def end(self) -> None:
        """Wake the client's handler with the end marker, even when its queue is full."""
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class LiveHub:
    """Observer of decisions and fan-out of ticks and status changes to SSE clients."""

    def __init__(self, board: Board, status: Callable[[], dict[str, Any]], clock: Callable[[], datetime], *,
                 interval: float = 1.0, status_every: float = 2.0, max_clients: int = 100,
                 queue_size: int = 32) -> None:
        self.board = board
        self.status = status
        self.clock = clock
        self.interval = interval
        self.status_every = status_every
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.clients: set[Client] = set()
        self.dropped = 0
        self._last_status: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._poke = asyncio.Event()

    # -- observer (hot path: no I/O, no awaits) ---------------------------------------------------

    def decided(self, outcome: Outcome, seconds: float) -> None:
        self.board.add(outcome)

    # -- clients ----------------------------------------------------------------------------------

    def subscribe(self) -> Client | None:
        if len(self.clients) >= self.max_clients:
            return None
        client = Client(self.queue_size)
        self.clients.add(client)
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)

    def summary(self) -> dict[str, Any]:
        return {"now": self.now(), **self.board.snapshot(), **self.status_now()}

    def now(self) -> float:
        return self.clock().astimezone(UTC).timestamp()

    def status_now(self) -> dict[str, Any]:
        try:
            return self.status()
        except Exception:  # a broken status source must not stop the decisions feed
            log.exception("live status failed")
            return {}

    def broadcast(self, event: str, data: Mapping[str, Any]) -> None:
        payload = sse_event(event, data)
        for client in list(self.clients):
            if not client.offer(payload):
                self.dropped += 1
                log.info("live feed: dropping a client that does not keep up (%d dropped so far)", self.dropped)
                self.clients.discard(client)
                client.end()

    def reconfigure(self, campaigns: frozenset[str]) -> None:
        """Follow a reload (SIGHUP); when the board changed, every page gets a fresh ``summary``.

        A tick only carries the minutes and blocks that changed since the last one, and a page merges it
        into what it holds: a renamed row would stay on the page under its old name. A summary replaces it.
        """
        if not self.board.reconfigure(campaigns) or not self.clients:
            self.poke_status()  # the bypasses' campaign names may have changed all the same
            return
        self.board.drain()  # what it held is in the summary: a later tick must not add it a second time
        status = self.status_now()
        self._last_status = status
        self.broadcast("summary", {"now": self.now(), **self.board.snapshot(), **status})

    def poke_status(self) -> None:
        """Ask for a status broadcast now (registry swapped); safe to call from the loop thread only."""
        self._poke.set()

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-hub")

    async def close(self) -> None:
        await cancel(self._task)
        for client in list(self.clients):
            client.end()
        self.clients.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_status = loop.time()
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11, a cancel (close()) that arrives as the poke is set
            # is swallowed by wait_for, and this loop, hence close() and the shutdown, would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._poke.wait()
            poked = self._poke.is_set()
            self._poke.clear()
            if not self.clients:
                self.board.drain()  # nobody listens: the next client starts from a summary anyway
                self._last_status = None
                continue
            delta = self.board.drain()
            if delta is not None:
                self.broadcast("tick", {"now": self.now(), **delta})
            if poked or loop.time() >= next_status:
                next_status = loop.time() + self.status_every
                status = self.status_now()
                if status != self._last_status:
                    self._last_status = status
                    self.broadcast("status", {"now": self.now(), **status})
