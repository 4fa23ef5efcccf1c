"""The hash chain of the audit trail: what is hashed, how, and how a chain is verified (pure: no I/O).

Row ``seq`` stores ``prev_hash`` (the hash of row ``seq - 1``) and
``hash = SHA-256(prev_hash ":" canonical JSON [seq, columns...])``. The
``meta`` table keeps the head (last seq and hash, updated in the same
transaction as the rows) and the retention anchor (seq and hash of the last
purged row; the genesis hash before any purge). :func:`verify_rows` therefore
detects a changed, removed, inserted or reordered row and a truncated tail.
What it cannot detect is a rewrite of the whole chain from some point on by
someone with write access: keep the head hash that ``audit verify`` prints
somewhere else (a ticket, a log shipper) to pin the history up to that point.
The head is read under SQLite's write lock at each commit, so two gateways on
one host may share a file: their records interleave in one chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.audit.record import AuditRecord

GENESIS = "0" * 64
CHAIN_SCHEME = "sha256-json-v1"

# The hashed columns, in hash order. Never reorder: old chains would stop verifying.
COLUMNS = ("decision_id", "at", "campaign", "number", "verdict", "reason", "rule", "would_block", "mode", "regime",
           "lists", "caller_id", "channel", "uniqueid", "source", "detail")


def _text(value: object) -> str:
    s = value if isinstance(value, str) else str(value)
    # A lone surrogate (from a badly decoded channel name) would make the whole group's INSERT fail.
    return s if s.isascii() else s.encode("utf-8", "replace").decode("utf-8")


def record_row(record: AuditRecord) -> tuple[Any, ...]:
    """The column values of a record, exactly as stored and hashed (see :data:`COLUMNS`)."""
    lists = json.dumps({_text(k): _text(v) for k, v in dict(record.lists).items()}, sort_keys=True,
                       ensure_ascii=False, separators=(",", ":"))
    return (_text(record.decision_id), float(record.at), _text(record.campaign), _text(record.number),
            _text(record.verdict), None if record.reason is None else _text(record.reason), _text(record.rule),
            int(bool(record.would_block)), _text(record.mode), _text(record.regime), lists, _text(record.caller_id),
            _text(record.channel), _text(record.uniqueid), _text(record.source), _text(record.detail))


def chain_hash(prev_hash: str, seq: int, row: Sequence[Any]) -> str:
    """SHA-256 of the previous hash and the canonical JSON of ``[seq, *row]`` (floats by repr: exact)."""
    canon = json.dumps([seq, *row], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}:{canon}".encode("utf-8", "surrogatepass")).hexdigest()



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
    """Walk rows in ``seq`` order from the anchor to the head; stop at the first break."""
    expected, prev, count, first = anchor_seq + 1, anchor_hash, 0, 0

    def broken(seq: int, problem: str) -> Verification:
        return Verification(False, count, first, expected - 1, prev, anchor_seq, seq, problem)

    for row in rows:
        seq, cols, stored_prev, stored_hash = row[0], row[1:-2], row[-2], row[-1]
        if not isinstance(seq, int) or seq < expected:
            return broken(seq, f"record seq {seq} is out of order (expected {expected})")
        if seq > expected:
            gap = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
            return broken(expected, f"record(s) seq {gap} removed (seq {seq} follows {expected - 1})")
        if stored_prev != prev:
            return broken(seq, f"record seq {seq} does not follow seq {seq - 1}: its prev_hash does not match "
                               "(removed, inserted or reordered records)")
        if chain_hash(prev, seq, cols) != stored_hash:
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
