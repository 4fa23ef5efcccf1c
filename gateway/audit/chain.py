"""The hash chain of the audit trail: what is hashed, how, and how a chain is verified (pure: no I/O).

Row ``seq`` stores ``prev_hash`` (the hash of row ``seq - 1``) and
``hash = SHA-256(prev_hash ":" canonical JSON [seq, columns..., written_at])``, where the columns are
:data:`COLUMNS` and ``written_at`` is when the writer committed the row (its wall clock, UNIX seconds), beside
the decision time ``at``: a decision dated next week (``check --record --at``) then shows it was written today.

The ``written_at`` rule (scheme ``sha256-json-v2``). Rows written before the column existed (scheme v1) have
``written_at`` NULL and hash exactly as they always did: ``[seq, columns...]``, without it. A row with a
``written_at`` hashes it as one more value at the end. The writer always sets it, so every row it writes
after the upgrade is a v2 row, and a v1 database keeps verifying with no row rewritten (the migration only
adds the column, see :func:`gateway.audit.writer.open_writer`). Changing a v2 row's ``written_at``, or
nulling it out to pass the row off as a v1 one, changes what is hashed: ``verify`` reports the row modified.

The ``meta`` table keeps the head (last seq and hash, updated in the same
transaction as the rows) and the retention anchor (seq and hash of the last
purged row; the genesis hash before any purge). :func:`verify_rows` therefore
detects a changed, removed, inserted or reordered row and a truncated tail.
What it cannot detect is a rewrite of the whole chain from some point on by
someone with write access: keep the head hash that ``audit verify`` prints
somewhere else (a ticket, a log shipper) to pin the history up to that point.
The head is checked under SQLite's write lock at each commit (and read again when
another writer moved it), so two gateways on one host may share a file: their
records interleave in one chain.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.audit.record import AuditRecord

GENESIS = "0" * 64
CHAIN_SCHEME = "sha256-json-v2"  # v1 plus ``written_at`` (see the module docstring): verifies v1 rows unchanged
CHAIN_SCHEME_V1 = "sha256-json-v1"  # before ``written_at``: a database with it is upgraded when a writer opens it

# The hashed columns of the decision, in hash order. Never reorder: old chains would stop verifying.
COLUMNS = ("decision_id", "at", "campaign", "number", "verdict", "reason", "rule", "would_block", "mode", "regime",
           "lists", "caller_id", "channel", "uniqueid", "source", "detail")
WRITTEN_AT = "written_at"
# What a stored row holds between ``seq`` and ``prev_hash, hash``: the decision, then when it was written.
STORED_COLUMNS = (*COLUMNS, WRITTEN_AT)


def _text(value: object) -> str:
    s = value if isinstance(value, str) else str(value)
    # A lone surrogate (from a badly decoded channel name) would make the whole group's INSERT fail.
    return s if s.isascii() else s.encode("utf-8", "replace").decode("utf-8")


def _texts(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """:func:`_text` of each value; the values themselves when all are strings and ASCII (every call but a few):
    one C-level join and test instead of a Python call per column."""
    try:
        if "".join(values).isascii():
            return values
    except TypeError:  # a value that is not a string: the slow path converts it
        pass
    return tuple(map(_text, values))


# The canonical JSON of the chain is what ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` writes
# (``sort_keys=True`` for the lists). These are the very encoders ``json.dumps`` builds for those arguments, built
# once: ``json.dumps`` with any non-default argument makes a new JSONEncoder at every call. Same class, same
# arguments, so the same text, byte for byte (tests/audit/test_canonical.py checks it against ``json.dumps``).
_CANON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_CANON_SORTED = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_canon = _CANON.encode
# The C encoder that ``_CANON.encode`` makes at each call, made once, for the writer's rows: flat lists of str,
# float, int and None (record_row's output), so no circular-reference markers are needed. Where the C
# accelerator is missing (another Python), the JSONEncoder itself.
_c_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_row_chunks: Any = (None if _c_encoder is None else
                    _c_encoder(None, _CANON.default, json.encoder.encode_basestring, None, ":", ",", False, False,
                               True))


def _canon_row(row: tuple[Any, ...]) -> str:
    """``_canon(row)`` for a row of :func:`record_row` (the same text)."""
    return _canon(row) if _row_chunks is None else "".join(_row_chunks(row, 0))


def _lists_json(lists: Mapping[str, str]) -> str:
    return _CANON_SORTED.encode({_text(k): _text(v) for k, v in dict(lists).items()})


def record_row(record: AuditRecord) -> tuple[Any, ...]:
    """The column values of a record, exactly as stored and hashed (see :data:`COLUMNS`)."""
    return _row(record, _lists_json(record.lists))


def _row(record: AuditRecord, lists: str) -> tuple[Any, ...]:
    """:func:`record_row` with the lists' JSON given."""
    (decision_id, campaign, number, verdict, rule, mode, regime, caller_id, channel, uniqueid, source,
     detail) = _texts((record.decision_id, record.campaign, record.number, record.verdict, record.rule, record.mode,
                       record.regime, record.caller_id, record.channel, record.uniqueid, record.source,
                       record.detail))
    reason = record.reason
    return (decision_id, float(record.at), campaign, number, verdict, None if reason is None else _text(reason), rule,
            int(bool(record.would_block)), mode, regime, lists, caller_id, channel, uniqueid, source, detail)


def chain_hash(prev_hash: str, seq: int, row: Sequence[Any]) -> str:
    """SHA-256 of the previous hash and the canonical JSON of ``[seq, *row]`` (floats by repr: exact)."""
    canon = _canon([seq, *row])
    return hashlib.sha256(f"{prev_hash}:{canon}".encode("utf-8", "surrogatepass")).hexdigest()


class RowEncoder:
    """The writer's :func:`record_row` and :func:`row_hash`, with what one commit can share computed once.

    The lists consulted are one mapping object per campaign and regime for a registry version (the engine keeps
    them), so their JSON is kept by object, checked against a copy of what it held (a mapping changed in place is
    encoded again). The decision's columns are encoded once, as the middle of the canonical JSON array, and a
    commit's ``written_at`` once: each row's hash then joins three strings and calls SHA-256.
    """

    __slots__ = ("_lists",)

    MAX_LISTS = 256  # mappings remembered; past that the cache starts again (a registry reload makes new ones)

    def __init__(self) -> None:
        self._lists: dict[int, tuple[Mapping[str, str], dict[str, str], str]] = {}

    def row(self, record: AuditRecord) -> tuple[tuple[Any, ...], str]:
        """The stored columns of ``record`` and their canonical JSON without the brackets (see :meth:`hash`)."""
        lists = record.lists
        cached = self._lists.get(id(lists))
        # Held by the cache, the mapping cannot be freed and its id reused: ``is`` then means this very mapping.
        if cached is not None and cached[0] is lists and cached[1] == lists:
            text = cached[2]
        else:
            text = _lists_json(lists)
            if len(self._lists) >= self.MAX_LISTS:
                self._lists.clear()
            self._lists[id(lists)] = (lists, dict(lists), text)
        row = _row(record, text)
        return row, _canon_row(row)[1:-1]

    @staticmethod
    def written(written_at: float) -> str:
        """The canonical JSON of a commit's ``written_at``: what :meth:`hash` appends to every row of it."""
        return _canon(written_at)

    @staticmethod
    def hash(prev_hash: str, seq: int, body: str, written: str) -> str:
        """:func:`row_hash` of a v2 row from :meth:`row`'s JSON and :meth:`written`'s (the same text, joined here)."""
        return hashlib.sha256(f"{prev_hash}:[{seq},{body},{written}]".encode("utf-8", "surrogatepass")).hexdigest()


def hashed(columns: Sequence[Any], written_at: Any) -> tuple[Any, ...]:
    """What a row's hash covers: its :data:`COLUMNS`, then ``written_at`` unless it is NULL (a v1 row)."""
    return tuple(columns) if written_at is None else (*columns, written_at)


def row_hash(prev_hash: str, seq: int, columns: Sequence[Any], written_at: Any) -> str:
    """The hash of stored row ``seq``: :func:`chain_hash` of what :func:`hashed` says it covers."""
    return chain_hash(prev_hash, seq, hashed(columns, written_at))


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify`` found; ``bad_seq`` is the first sequence number that breaks the chain."""

    ok: bool
    records: int
    first_seq: int
    last_seq: int
    head_hash: str
    anchor_seq: int
    bad_seq: int | None = None
    problem: str = ""

    @property
    def message(self) -> str:
        if not self.ok:
            return f"audit chain BROKEN at seq {self.bad_seq}: {self.problem}"
        span = f"{self.records} records, seq {self.first_seq}..{self.last_seq}" if self.records else "no records"
        purged = f", seq 1..{self.anchor_seq} purged by retention" if self.anchor_seq else ""
        return f"audit chain intact: {span}{purged}; head hash {self.head_hash}"


def verify_rows(rows: Iterable[Sequence[Any]], anchor_seq: int, anchor_hash: str, head_seq: int,
                head_hash: str) -> Verification:
    """Walk rows (``seq, *STORED_COLUMNS, prev_hash, hash``) in ``seq`` order from the anchor to the head; stop
    at the first break."""
    expected, prev, count, first = anchor_seq + 1, anchor_hash, 0, 0

    def broken(seq: int, problem: str) -> Verification:
        return Verification(False, count, first, expected - 1, prev, anchor_seq, seq, problem)

    for row in rows:
        seq, cols, written_at, stored_prev, stored_hash = row[0], row[1:-3], row[-3], row[-2], row[-1]
        if not isinstance(seq, int) or seq < expected:
            return broken(seq, f"record seq {seq} is out of order (expected {expected})")
        if seq > expected:
            gap = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
            return broken(expected, f"record(s) seq {gap} removed (seq {seq} follows {expected - 1})")
        if stored_prev != prev:
            return broken(seq, f"record seq {seq} does not follow seq {seq - 1}: its prev_hash does not match "
                               "(removed, inserted or reordered records)")
        if row_hash(prev, seq, cols, written_at) != stored_hash:
            return broken(seq, f"record seq {seq} was modified: its content does not match its hash")
        if not first:
            first = seq
        prev, expected, count = stored_hash, expected + 1, count + 1
    last = expected - 1
    if last < head_seq:
        gap = f"{last + 1}" if head_seq == last + 1 else f"{last + 1}..{head_seq}"
        return broken(last + 1, f"record(s) seq {gap} removed from the end (the head says {head_seq})")
    if last > head_seq:
        return broken(head_seq + 1, f"records after the recorded head seq {head_seq} (added outside the gateway)")
    if prev != head_hash:
        return broken(last, f"record seq {last} does not match the recorded head hash")
    return Verification(True, count, first, last, prev, anchor_seq)


class Link(enum.StrEnum):
    """How one record stands in the chain (``check_record``): what a proof dossier says of each decision."""

    INTACT = "intact"  # its content matches its hash, and its neighbours chain to it
    MODIFIED = "modified"  # its content does not match its hash: changed after it was written
    UNLINKED = "unlinked"  # its own hash holds, but a neighbour does not chain to it (removed, inserted, rewritten)


@dataclass(frozen=True, slots=True)
class RecordCheck:
    """The verdict on one record: ``link`` and, unless intact, the sentence that says what is wrong."""

    seq: int
    link: Link
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.link is Link.INTACT


def check_record(row: Sequence[Any], before: str | None, after: str | None, *, anchor_seq: int,
                 head_seq: int) -> RecordCheck:
    """One stored row (``seq, *STORED_COLUMNS, prev_hash, hash``) checked against its neighbours only.

    ``before`` is the hash of row ``seq - 1`` (the anchor hash when that row was purged by retention; None when
    it is missing), ``after`` the ``prev_hash`` of row ``seq + 1`` (the head hash for the last row; None when
    missing). A record whose content was changed fails its own hash; one whose hash was recomputed as well no
    longer matches its successor's ``prev_hash``. That is what :func:`verify_rows` finds for these rows, without
    walking the whole trail (which may hold years of calls); a record removed between two other numbers' records
    is found only by the whole walk (``audit verify``).
    """
    seq, cols, written_at, prev, stored = row[0], row[1:-3], row[-3], row[-2], row[-1]
    if row_hash(prev, seq, cols, written_at) != stored:
        return RecordCheck(seq, Link.MODIFIED, f"record seq {seq} was modified: its content does not match its hash")
    if seq <= anchor_seq:
        return RecordCheck(seq, Link.UNLINKED, f"record seq {seq} is older than the retention anchor (seq "
                                               f"{anchor_seq}): put back after a purge")
    if before is None:
        return RecordCheck(seq, Link.UNLINKED, f"record seq {seq - 1}, just before it, was removed")
    if before != prev:
        return RecordCheck(seq, Link.UNLINKED, f"record seq {seq} does not follow seq {seq - 1}: its prev_hash "
                                               "does not match (records changed, removed or inserted before it)")
    if seq > head_seq:
        return RecordCheck(seq, Link.UNLINKED, f"record seq {seq} is after the recorded head seq {head_seq} "
                                               "(added outside the gateway)")
    if after is None:
        return RecordCheck(seq, Link.UNLINKED, f"record seq {seq + 1}, just after it, was removed")
    if after != stored:
        what = "the recorded head hash" if seq == head_seq else f"the prev_hash of seq {seq + 1}"
        return RecordCheck(seq, Link.UNLINKED, f"record seq {seq} does not match {what}: it was rewritten "
                                               "(or records after it were)")
    return RecordCheck(seq, Link.INTACT)
