"""Call history packed in flat arrays: a few bytes per attempt, none of Python's per-object overhead.

A dict of lists of datetimes costs ~300 bytes per attempt (the datetime, the list slot, the dict entry and
its tuple key); 30 days of a large call centre is then gigabytes. Here the numbers are spread over shards by
their low bits, and each shard is three arrays:

- ``keys``  (``array('Q')``, 8 bytes a number): the numbers with attempts, sorted;
- ``ends``  (``array('I')``, 4 bytes a number): where each number's run of attempts ends in ``times``;
- ``times`` (``array('I')``, 4 bytes an attempt): the attempts, as seconds since ``EPOCH``, each number's
  run sorted (oldest first).

A read is a bisection in a shard's keys and a slice of its times: O(log n + attempts of that number). A write
inserts into one shard (a memmove of a few kilobytes and a shift of the ends after it), so shards stay small:
``LOAD`` numbers on average. The shard count grows with the store by linear hashing: one shard at a time splits
in two (by the next bit of its keys) each time the average passes ``LOAD``, so a growing store never stops
to rehash everything, and a small one costs a few tens of kilobytes. Refusals and opt-outs, one instant per
number, are the same without ``ends`` (:class:`Stamps`).

Instants are whole seconds, rounded *up*: a stored attempt is never earlier than the real one, so a cap
(count the attempts at or after ``since``) can count one a second longer, never miss one; a refusal's cooldown
lasts at most a second longer. A rolling 24-hour window (or any window) keeps second resolution.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

# The packed format's units are the History's stamps (re-exported: the store and the snapshot speak of them here).
from gateway.state.model import EMPTY_HISTORY, History
from gateway.state.model import EPOCH as EPOCH
from gateway.state.model import MAX_STAMP as MAX_STAMP
from gateway.state.model import instant as instant
from gateway.state.model import stamp as stamp

_EPOCH_TS = int(EPOCH.timestamp())
LOAD = 128  # numbers per shard on average: a shard splits when there are more (a write then shifts ~64 ends)
FIRST_LEVEL = 8  # an empty store starts with 256 shards (a few tens of kilobytes)

if array("I").itemsize != 4 or array("Q").itemsize != 8:  # pragma: no cover - every supported platform
    raise ImportError("gateway.state.packed needs 4-byte array('I') and 8-byte array('Q')")


def stamp_of_ts(ts: float) -> int:
    """:func:`stamp` of a UNIX time (what SQLite keeps): rounded up likewise."""
    s = ts - _EPOCH_TS
    whole = int(s)
    if whole < s:
        whole += 1
    if whole > MAX_STAMP:
        raise ValueError(f"instant out of range for the packed history: {ts}")
    return whole if whole > 0 else 0


_ORDER = sys.byteorder
_LANE = (1).to_bytes(4, _ORDER)
_ONES: dict[int, int] = {}  # n -> the integer whose n 32-bit lanes each hold 1


def _shift(ends: array[int], i: int, d: int) -> None:
    """Add ``d`` to ``ends[i:]``: the runs after an insert or a deletion moved by ``d``.

    The hot spot of a write. Read as one big integer, the 32-bit lanes all move by ``d`` in one addition of
    ``d * 0x...000100000001`` (no lane overflows: ends stay far below 2**32, and never go below 0), in C: a few
    times faster than a Python loop over the ~64 ends a write shifts on average."""
    n = len(ends) - i
    if n < 16:
        for j in range(i, i + n):
            ends[j] += d
        return
    ones = _ONES.get(n)
    if ones is None:
        ones = _ONES[n] = int.from_bytes(_LANE * n, _ORDER)
    with memoryview(ends) as view:  # released before anything resizes the array
        tail = view[i:]
        tail[:] = memoryview((int.from_bytes(tail, _ORDER) + d * ones).to_bytes(4 * n, _ORDER)).cast("I")
        tail.release()


class _Sharded:
    """Linear hashing of numbers over shards: shard ``key & mask``, or ``key & (2 * mask + 1)`` for the shards
    below ``split`` (already split at this level). Subclasses hold their columns, one list of arrays each."""

    __slots__ = ("keys", "mask", "size", "split")

    def __init__(self, level: int = FIRST_LEVEL) -> None:
        self.mask = (1 << level) - 1
        self.split = 0
        self.size = 0  # numbers held
        self.keys: list[array[int] | None] = [None] * (1 << level)

    @property
    def shards(self) -> int:
        return len(self.keys)

    def shard(self, key: int) -> int:
        s = key & self.mask
        return key & (2 * self.mask + 1) if s < self.split else s

    def _find(self, key: int) -> tuple[int, int] | None:
        """(shard, index) of the number among its shard's keys, or None when it holds nothing for it.

        On every history read: :meth:`shard`'s two lines are repeated here rather than called (a call more is
        ~40 ns a read)."""
        s = key & self.mask
        if s < self.split:
            s = key & (2 * self.mask + 1)
        keys = self.keys[s]
        if not keys:
            return None
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            return None
        return s, i

    def _grown(self) -> None:
        """One number more: split the next shard if the average passed LOAD."""
        self.size += 1
        if self.size > LOAD * len(self.keys):
            self.grow()

    def grow(self) -> None:
        bit = self.mask + 1
        self._split_shard(self.split, bit)  # its keys with ``bit`` set move to shard split + bit (appended)
        self.split += 1
        if self.split == bit:
            self.mask = 2 * self.mask + 1
            self.split = 0

    def _split_shard(self, s: int, bit: int) -> None:
        raise NotImplementedError

    def shape(self) -> array[int]:
        return array("I", [self.mask.bit_length(), self.split])

    def _reshape(self, shape: array[int], lengths: array[int]) -> None:
        if len(shape) != 2 or not 0 <= shape[1] < (1 << shape[0]) or len(lengths) != (1 << shape[0]) + shape[1]:
            raise ValueError("packed history: shard layout does not add up")
        self.mask = (1 << shape[0]) - 1
        self.split = shape[1]
        self.keys = [None] * len(lengths)

    def numbers(self) -> Iterator[array[int]]:
        """Each shard's keys (for a caller that collects them in bulk)."""
        return (k for k in self.keys if k)


class Runs(_Sharded):
    """Each number's attempts: a sorted run of stamps per number, in shards (see the module docstring)."""

    __slots__ = ("ends", "times")

    def __init__(self, level: int = FIRST_LEVEL) -> None:
        super().__init__(level)
        self.ends: list[array[int] | None] = [None] * (1 << level)
        self.times: list[array[int] | None] = [None] * (1 << level)

    def run(self, key: int, horizon: int = 0) -> array[int] | None:
        """The number's stamps at or after ``horizon``, oldest first (a copy), or None if it has none held."""
        found = self._find(key)
        if found is None:
            return None
        s, i = found
        ends = self.ends[s]
        times = self.times[s]
        assert ends is not None and times is not None
        start = ends[i - 1] if i else 0
        end = ends[i]
        if horizon and times[start] < horizon:
            start = bisect_left(times, horizon, start, end)
        return times[start:end]

    def count(self, key: int, horizon: int = 0) -> int:
        found = self.run(key, horizon)
        return len(found) if found is not None else 0

    def add(self, key: int, t: int, horizon: int, since: int = 0, limit: int = -1) -> bool:
        """Add stamp ``t`` to the number's run, first dropping its stamps before ``horizon``; with ``limit`` >= 0,
        only when fewer than ``limit`` stamps are at or after ``since`` (returns False, adding nothing, else)."""
        s = self.shard(key)
        keys = self.keys[s]
        if keys is None:
            keys = self.keys[s] = array("Q")
            self.ends[s] = array("I")
            self.times[s] = array("I")
        ends = self.ends[s]
        times = self.times[s]
        assert ends is not None and times is not None
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            start = ends[i - 1] if i else 0
            end = ends[i]
            if times[start] < horizon:  # as the unpacked store did: prune the number's run before counting
                cut = bisect_left(times, horizon, start, end)
                if cut == end:  # the whole run expired: the number starts afresh
                    del times[start:end]
                    del keys[i]
                    del ends[i]
                    _shift(ends, i, start - end)
                    self.size -= 1
                    return self.add(key, t, horizon, since, limit)
                del times[start:cut]
                _shift(ends, i, start - cut)
                end -= cut - start
            if limit >= 0 and end - bisect_left(times, since, start, end) >= limit:
                return False
            pos = end if times[end - 1] <= t else bisect_right(times, t, start, end)
            times.insert(pos, t)
            _shift(ends, i, 1)
            return True
        if limit == 0:
            return False
        start = ends[i - 1] if i else 0
        keys.insert(i, key)
        ends.insert(i, start)
        times.insert(start, t)
        _shift(ends, i, 1)
        self._grown()
        return True

    def _split_shard(self, s: int, bit: int) -> None:
        keys, ends, times = self.keys[s], self.ends[s], self.times[s]
        if not keys or ends is None or times is None:
            self.keys.append(None)
            self.ends.append(None)
            self.times.append(None)
            return
        lo_k, lo_e, lo_t = array("Q"), array("I"), array("I")
        hi_k, hi_e, hi_t = array("Q"), array("I"), array("I")
        start = 0
        for key, end in zip(keys, ends, strict=True):
            if key & bit:
                hi_k.append(key)
                hi_t.extend(times[start:end])
                hi_e.append(len(hi_t))
            else:
                lo_k.append(key)
                lo_t.extend(times[start:end])
                lo_e.append(len(lo_t))
            start = end
        self.keys[s], self.ends[s], self.times[s] = lo_k, lo_e, lo_t
        self.keys.append(hi_k)
        self.ends.append(hi_e)
        self.times.append(hi_t)

    def prune_shard(self, s: int, horizon: int) -> int:
        """Drop the shard's stamps before ``horizon`` (and the numbers left with none); returns how many went."""
        keys, ends, times = self.keys[s], self.ends[s], self.times[s]
        if not keys or times is None or ends is None or not times or min(times) >= horizon:
            return 0
        new_keys, new_ends, new_times = array("Q"), array("I"), array("I")
        start = 0
        for i, end in enumerate(ends):
            cut = bisect_left(times, horizon, start, end) if times[start] < horizon else start
            if cut < end:
                new_keys.append(keys[i])
                new_times.extend(times[cut:end])
                new_ends.append(len(new_times))
            start = end
        dropped = len(times) - len(new_times)
        self.size -= len(keys) - len(new_keys)
        self.keys[s], self.ends[s], self.times[s] = new_keys, new_ends, new_times
        return dropped

    def attempts(self) -> int:
        return sum(len(t) for t in self.times if t)

    def nbytes(self) -> int:
        """Bytes in the arrays' buffers (what the packing costs, without the fixed per-shard headers)."""
        return sum(a.buffer_info()[1] * a.itemsize for col in (self.keys, self.ends, self.times) for a in col if a)

    def flat(self) -> list[array[int]]:
        """``[shape, numbers per shard, keys, ends, times per shard, times]``; ends stay relative to their shard."""
        lengths = array("I", [len(k) if k else 0 for k in self.keys])
        tlen = array("I", [len(t) if t else 0 for t in self.times])
        return [self.shape(), lengths, _concat(self.keys, "Q"), _concat(self.ends, "I"), tlen,
                _concat(self.times, "I")]

    @classmethod
    def from_flat(cls, shape: array[int], lengths: array[int], keys: array[int], ends: array[int],
                  tlen: array[int], times: array[int]) -> Runs:
        r = cls()
        r._reshape(shape, lengths)
        if len(tlen) != len(lengths) or sum(lengths) != len(keys) or len(ends) != len(keys) \
                or sum(tlen) != len(times):
            raise ValueError("packed history: column lengths do not add up")
        r.ends = [None] * len(lengths)
        r.times = [None] * len(lengths)
        k = t = 0
        for s, (n, m) in enumerate(zip(lengths, tlen, strict=True)):
            if n:
                r.keys[s] = keys[k:k + n]
                shard_ends = r.ends[s] = ends[k:k + n]
                r.times[s] = times[t:t + m]
                if shard_ends[-1] != m:
                    raise ValueError(f"packed history: shard {s} ends at {shard_ends[-1]}, holds {m}")
                k += n
                t += m
        r.size = len(keys)
        return r


class RunsBuilder:
    """Builds :class:`Runs` from ``(key, stamp)`` pairs in key order (then stamp order): a bulk load, with no
    bisection and no insert per row. ``rows``: about how many will come (sizes the shards)."""

    def __init__(self, rows: int = 0) -> None:
        level = FIRST_LEVEL
        while (LOAD << (level + 1)) <= rows // 2:
            level += 1
        self.runs = Runs(level)

    def extend(self, rows: Iterable[tuple[int, int]]) -> None:
        r = self.runs
        mask = r.mask
        all_keys, all_ends, all_times = r.keys, r.ends, r.times
        for key, t in rows:
            s = key & mask
            keys = all_keys[s]
            if keys is None:
                keys = all_keys[s] = array("Q")
                all_ends[s] = array("I")
                all_times[s] = array("I")
            ends = all_ends[s]
            times = all_times[s]
            assert ends is not None and times is not None
            times.append(t)
            if keys and keys[-1] == key:
                ends[-1] += 1
            else:
                keys.append(key)
                ends.append(len(times))
                r.size += 1

    def done(self) -> Runs:
        r = self.runs
        while r.size > LOAD * len(r.keys):
            r.grow()
        return r


class Stamps(_Sharded):
    """One stamp per number (the last refusal, or the opt-out), in shards of sorted keys and their stamps."""

    __slots__ = ("stamps",)

    def __init__(self, level: int = FIRST_LEVEL) -> None:
        super().__init__(level)
        self.stamps: list[array[int] | None] = [None] * (1 << level)

    def get(self, key: int) -> int | None:
        if not self.size:  # most stores hold few or none: no bisection
            return None
        found = self._find(key)
        if found is None:
            return None
        s, i = found
        stamps = self.stamps[s]
        assert stamps is not None
        return stamps[i]

    def put(self, key: int, t: int, *, later: bool) -> bool:
        """Keep ``t`` for the number: with ``later``, the later of the two stamps (a refusal); without, the first
        one recorded stands (an opt-out, as Redis' SET NX); True if it changed."""
        s = self.shard(key)
        keys = self.keys[s]
        if keys is None:
            keys = self.keys[s] = array("Q")
            self.stamps[s] = array("I")
        stamps = self.stamps[s]
        assert stamps is not None
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            if later and t > stamps[i]:
                stamps[i] = t
                return True
            return False
        keys.insert(i, key)
        stamps.insert(i, t)
        self._grown()
        return True

    def _split_shard(self, s: int, bit: int) -> None:
        keys, stamps = self.keys[s], self.stamps[s]
        if not keys or stamps is None:
            self.keys.append(None)
            self.stamps.append(None)
            return
        hi = [i for i, key in enumerate(keys) if key & bit]
        lo = [i for i, key in enumerate(keys) if not key & bit]
        self.keys[s] = array("Q", [keys[i] for i in lo])
        self.stamps[s] = array("I", [stamps[i] for i in lo])
        self.keys.append(array("Q", [keys[i] for i in hi]))
        self.stamps.append(array("I", [stamps[i] for i in hi]))

    def prune_shard(self, s: int, horizon: int) -> int:
        """Drop the shard's stamps before ``horizon``; returns how many went."""
        keys, stamps = self.keys[s], self.stamps[s]
        if not stamps or keys is None or min(stamps) >= horizon:
            return 0
        kept = [i for i, t in enumerate(stamps) if t >= horizon]
        self.keys[s] = array("Q", [keys[i] for i in kept])
        self.stamps[s] = array("I", [stamps[i] for i in kept])
        dropped = len(stamps) - len(kept)
        self.size -= dropped
        return dropped

    def nbytes(self) -> int:
        return sum(a.buffer_info()[1] * a.itemsize for col in (self.keys, self.stamps) for a in col if a)

    def flat(self) -> list[array[int]]:
        """``[shape, numbers per shard, keys, stamps]``."""
        lengths = array("I", [len(k) if k else 0 for k in self.keys])
        return [self.shape(), lengths, _concat(self.keys, "Q"), _concat(self.stamps, "I")]

    @classmethod
    def from_flat(cls, shape: array[int], lengths: array[int], keys: array[int], stamps: array[int]) -> Stamps:
        st = cls()
        st._reshape(shape, lengths)
        if sum(lengths) != len(keys) or len(stamps) != len(keys):
            raise ValueError("packed history: column lengths do not add up")
        st.stamps = [None] * len(lengths)
        k = 0
        for s, n in enumerate(lengths):
            if n:
                st.keys[s] = keys[k:k + n]
                st.stamps[s] = stamps[k:k + n]
                k += n
        st.size = len(keys)
        return st


def _concat(col: list[array[int] | None], typecode: str) -> array[int]:
    """A column's shards end to end (what a snapshot holds: a few big buffers, cut back into shards by C-level
    slices when read)."""
    flat = array(typecode)
    for a in col:
        if a:
            flat.extend(a)
    return flat


class Ledger:
    """One professional's history: attempts (:class:`Runs`), last refusals, opt-outs and consents recorded at a
    call or over the API (:class:`Stamps`; consents are few, kept like refusals)."""

    __slots__ = ("attempts", "consents", "optouts", "refusals")

    def __init__(self, attempts: Runs | None = None, refusals: Stamps | None = None,
                 optouts: Stamps | None = None, consents: Stamps | None = None) -> None:
        self.attempts = attempts or Runs()
        self.refusals = refusals or Stamps()
        self.optouts = optouts or Stamps()
        self.consents = consents or Stamps()

    def history(self, key: int, horizon: int, r_horizon: int) -> History:
        """The number's history: its attempts from ``horizon`` on, its refusal if not before ``r_horizon`` (what
        a later prune keeps)."""
        run = self.attempts.run(key, horizon)
        refused = self.refusals.get(key)
        if refused is not None and refused < r_horizon:
            refused = None
        opted = self.optouts.get(key)
        consented = self.consents.get(key) if self.consents.size else None  # most stores have none: no look-up
        if consented is not None and consented < r_horizon:
            consented = None
        if not run and refused is None and opted is None and consented is None:
            return EMPTY_HISTORY
        # The run is already a copy (a slice): the History holds it as it is, with no datetime per attempt.
        return History(stamps=run if run else array("I"), last_refusal=None if refused is None else instant(refused),
                       opted_out_at=None if opted is None else instant(opted),
                       consent_at=None if consented is None else instant(consented))

    def nbytes(self) -> int:
        return self.attempts.nbytes() + self.refusals.nbytes() + self.optouts.nbytes() + self.consents.nbytes()

    def flat(self) -> list[array[int]]:
        return [*self.attempts.flat(), *self.refusals.flat(), *self.optouts.flat(), *self.consents.flat()]

    @classmethod
    def from_flat(cls, cols: list[array[int]]) -> Ledger:
        if len(cols) != LEDGER_COLUMNS:
            raise ValueError(f"packed history: {len(cols)} columns, expected {LEDGER_COLUMNS}")
        return cls(Runs.from_flat(*cols[:6]), Stamps.from_flat(*cols[6:10]), Stamps.from_flat(*cols[10:14]),
                   Stamps.from_flat(*cols[14:]))


LEDGER_COLUMNS = 18
LEDGER_TYPECODES = "IIQIII" + "IIQI" + "IIQI" + "IIQI"  # what Ledger.flat() returns, column by column
