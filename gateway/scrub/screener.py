"""The decision for each line of a scrub: the engine's, once per signature, with whole-block bitmap shortcuts.

:class:`Screener` calls the engine once per *signature* and caches it: for one
campaign at one instant, with no call history (scrub records nothing), the engine's
answer depends on the number only through its kind, region, time zones, area code (+1:
the state whose rules apply, the zones it spans) and which of the campaign's lists hold
it. What the answer depends on is the engine's own statement (:mod:`gateway.policy.depends`), read here rather than
restated; for a number a dated list holds (a consent's or a relationship's date), those dates are part of its
signature.
A block of plain 10-digit national numbers is screened with
whole-block bitmap operations: only its lines whose national number is in the
campaign's "hot" set (on a list, overseas, or of a kind whose answer differs) are looked
at one by one; every other line gets the precomputed base decision. Property tests check
this against ``Gateway.decide`` line by line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from pyroaring import BitMap, FrozenBitMap64

from gateway.numbers import Kind, Normaliser, Number
from gateway.policy.decision import Decision, Verdict
from gateway.policy.depends import HISTORY_RULES, consulted_lists, list_dates, number_signature
from gateway.policy.engine import Call, Engine
from gateway.registry.loaders import national_view
from gateway.registry.model import KeyRanges, Registries
from gateway.state.model import EMPTY_HISTORY, History

Signature = tuple[object, ...]  # gateway.policy.depends: the number's signature, the list mask (and dates)
HistoryLookup = Callable[[Sequence[int]], Mapping[int, History]]
"""The non-empty call histories of some numbers (keys), from the gateway's state store."""

# The rules that only a number's history can fire: what the summary counts apart.
STATE_RULES = HISTORY_RULES


class Screener:
    """Decisions for one campaign at one instant: one engine call per signature for numbers with no history,
    one per number for those the state store knows (opt-outs, refusals, attempts), as ``check`` decides them."""

    def __init__(self, engine: Engine, regs: Registries, normaliser: Normaliser, campaign: str, at: datetime,
                 caller_id: str | None = None, history: HistoryLookup | None = None,
                 known: Collection[int] | None = None) -> None:
        if at.tzinfo is None:
            raise ValueError("scrub needs an aware datetime")
        self.engine = engine
        self.regs = regs
        self.normaliser = normaliser
        self.campaign = campaign
        self.at = at
        self.caller_id = caller_id
        self.history = history
        self.state_removed: Counter[str] = Counter()  # lines removed by a rule that read the number's history
        c = engine.campaigns[campaign]
        self.list_names = [n for n in consulted_lists(c) if regs.get(n) is not None]
        self.members: list[FrozenBitMap64 | KeyRanges] = [regs.lists[n].members for n in self.list_names]
        self.cache: dict[Signature, Decision] = {}
        self.engine_calls = 0
        # The lists whose members carry a date the engine reads (consent, relationship): such a member's decision
        # is its own, never served from a signature's.
        self.dated = sum(1 << i for i, n in enumerate(self.list_names) if n in regs.consent_dates)
        self.fast = normaliser.home_country == "FR"
        self._classes: list[tuple[Number, int] | None] = []
        self.views: list[BitMap] = []
        self.spans: list[tuple[tuple[Kind, str, tuple[str, ...], str], BitMap]] = []
        self.invalid_span = BitMap()
        self.decisions: list[Decision] = []
        self.allowed_codes: set[int] = set()
        self._codes: dict[int, int] = {}
        self.base_code = -1
        self.hot = BitMap()
        self.base: Decision | None = None
        if self.fast:
            self._prepare_fast()
        # National numbers the state store has a history for, when it can list them: a block then finds its
        # few such numbers with one bitmap intersection instead of a look-up per line.
        self.known_nsn: BitMap | None = None
        if known is not None and self._classes:
            self.known_nsn = BitMap()
            for key in known:
                nsn = key % 1_000_000_000
                cls = self._classes[nsn // 1_000_000]
                if cls is not None and cls[1] + nsn == key:
                    self.known_nsn.add(nsn)

    def mask(self, key: int) -> int:
        m = 0
        for i, members in enumerate(self.members):
            if key in members:
                m |= 1 << i
        return m

    def decide(self, number: Number) -> Decision:
        """The engine's decision for ``number``; exact, because everything it depends on is in the signature."""
        key = number.key
        mask = self.mask(key) if key else 0
        sig: Signature = (*number_signature(number), mask)
        if mask & self.dated:  # the dates the dated lists give it are part of its signature
            sig = (*sig, list_dates(self.regs, self.list_names, key))
        found = self.cache.get(sig)
        if found is None:
            found = self.cache[sig] = self.engine.decide(Call(number, self.campaign, self.caller_id), self.regs,
                                                         EMPTY_HISTORY, self.at)
            self.engine_calls += 1
        return found

    def with_history(self, number: Number, history: History) -> Decision:
        """The decision for a number the state store knows: not cached, its history is its own."""
        d = self.engine.decide(Call(number, self.campaign, self.caller_id), self.regs, history, self.at)
        self.engine_calls += 1
        if d.verdict is Verdict.BLOCK and d.rule in STATE_RULES:
            self.state_removed[d.rule] += 1
        return d

    def histories(self, keys: Sequence[int]) -> Mapping[int, History]:
        return self.history(keys) if self.history is not None and keys else {}

    def nsn_histories(self, nsn: Sequence[int]) -> dict[int, History]:
        """The histories of a block of national numbers, by national number."""
        if self.history is None:
            return {}
        if self.known_nsn is not None:
            nsn = list(BitMap(nsn) & self.known_nsn)
            if not nsn:
                return {}
        classes = self._classes
        keys: dict[int, int] = {}
        for n in nsn:
            cls = classes[n // 1_000_000]
            if cls is not None:
                keys[cls[1] + n] = n
        return {keys[k]: h for k, h in self.histories(list(keys)).items()}

    def number_of(self, nsn: int) -> Number:
        return self.normaliser.parse(f"0{nsn:09d}")

    def decide_nsn(self, nsn: int) -> Decision | None:
        """Decision for the national number ``0`` + ``nsn`` (9 digits, not 0-led); None when it is not a number.

        Every national number of one 3-digit prefix class shares kind, region and zones (gateway/numbers: the
        kind follows the first digit, overseas departments their 3-digit prefix), so the signature is the
        class's plus the list mask, and the number is parsed only when its signature is new.
        """
        cls = self._classes[nsn // 1_000_000]
        if cls is None:
            return None
        proto, offset = cls
        mask = self.mask(offset + nsn)
        found = None if mask & self.dated else self.cache.get((proto.kind, proto.region, proto.zones, "", mask))
        return found if found is not None else self.decide(self.normaliser.parse(f"0{nsn:09d}"))

    def _prepare_fast(self) -> None:
        """The hot set of national numbers (any whose decision may differ from the base one) and the base.

        Also the per-list 32-bit views of national numbers (``views``) and the classes grouped by
        (kind, region, zones) (``spans``), with which ``classify`` decides a whole block's hot numbers
        with bitmap operations, one engine call per new (class group, list mask).
        """
        classes: list[tuple[Number, int] | None] = [None] * 1000
        for p in range(100, 1000):
            proto = self.normaliser.parse(f"0{p:03d}123456")
            if proto.key:
                classes[p] = (proto, proto.key - (p * 1_000_000 + 123_456))
        self._classes = classes
        spans: dict[tuple[Kind, str, tuple[str, ...], str], BitMap] = {}
        invalid = BitMap()
        for p, c in enumerate(classes):
            if c is None:
                invalid.add_range(p * 1_000_000, (p + 1) * 1_000_000)
            else:
                spans.setdefault((c[0].kind, c[0].region, c[0].zones, ""), BitMap()).add_range(
                    p * 1_000_000, (p + 1) * 1_000_000)
        self.views = [BitMap() for _ in self.members]
        for offset in sorted({c[1] for c in classes if c is not None}):
            span = BitMap()
            for p, c in enumerate(classes):
                if c is not None and c[1] == offset:
                    span.add_range(p * 1_000_000, (p + 1) * 1_000_000)
            for i, members in enumerate(self.members):
                view = BitMap()
                if isinstance(members, KeyRanges):
                    for lo, hi in members:
                        lo, hi = max(lo, offset), min(hi, offset + 1_000_000_000)
                        if lo < hi:
                            view.add_range(lo - offset, hi - offset)
                else:
                    view = national_view(members, offset)
                self.views[i] |= view & span
        hot = BitMap()
        for view in self.views:
            view.run_optimize()
            hot |= view
        self.spans = [(sig, span) for sig, span in spans.items()]
        self.invalid_span = invalid
        bases: dict[int, Decision] = {}
        for p, c in enumerate(classes):
            if c is None:
                continue
            # A number of this class on none of the lists: its decision is every such number's.
            free = BitMap(range(p * 1_000_000, (p + 1) * 1_000_000)) - hot
            if free:
                bases[p] = self.decide(self.normaliser.parse(f"0{free.min():09d}"))
        if not bases:
            self.fast = False
            return
        base = bases.get(612) or next(iter(bases.values()))
        for p, c in enumerate(classes):
            if c is None or p not in bases or _outcome(bases[p]) != _outcome(base):
                hot.add_range(p * 1_000_000, (p + 1) * 1_000_000)
        hot.run_optimize()
        self.hot = hot
        self.base = base
        self.base_code = self.code(base)

    def code(self, d: Decision) -> int:
        """A small integer per distinct decision, so that a block's lines can be sorted by C loops."""
        found = self._codes.get(id(d))
        if found is None:
            found = self._codes[id(d)] = len(self.decisions)
            self.decisions.append(d)
            if d.verdict is Verdict.ALLOW:
                self.allowed_codes.add(found)
        return found

    def classify(self, hot: BitMap) -> dict[int, int]:
        """Decision code of every national number in ``hot`` (-1: not a number), by bitmap partitions."""
        out: dict[int, int] = {}
        bad = hot & self.invalid_span
        if bad:
            out.update(dict.fromkeys(bad, -1))
        for sig, span in self.spans:
            group = hot & span
            if not group:
                continue
            parts = [(0, group)]
            for i, view in enumerate(self.views):
                split: list[tuple[int, BitMap]] = []
                for m, part in parts:
                    inside = part & view
                    if inside:
                        split.append((m | 1 << i, inside))
                        part = part - inside
                    if part:
                        split.append((m, part))
                parts = split
            for m, part in parts:
                if m & self.dated:  # each its own dates: decided one by one (cached by signature and dates)
                    for nsn in part:
                        out[nsn] = self.code(self.decide(self.normaliser.parse(f"0{nsn:09d}")))
                    continue
                found = self.cache.get((*sig, m))
                if found is None:
                    found = self.decide(self.normaliser.parse(f"0{part.min():09d}"))
                out.update(dict.fromkeys(part, self.code(found)))
        return out


def _outcome(d: Decision) -> tuple[object, ...]:
    return (d.verdict, d.reason, d.rule, d.would_block, d.detail)


def planning_engine(engine: Engine) -> Engine:
    """The same engine and rules with every campaign's hours and holiday switches off (``--ignore-hours``)."""
    campaigns = {n: replace(c, check_hours=False, check_holidays=False) for n, c in engine.campaigns.items()}
    return Engine(campaigns, engine.pack_for, engine.settings)

