"""The packed history's snapshot beside the SQLite file: a JSON header and the arrays, verified before use.

Layout (as the registry snapshots, ``gateway/registry/snapshot.py``)::

    MAGIC (16 bytes) | header length (4 bytes, big-endian) | header (UTF-8 JSON) | payload

The payload is each professional's columns (``Ledger.flat()``) one after the other, in the machine's byte
order (the header names it; another order is refused, the SQLite file is then read instead). The header
carries each column's length, the payload's SHA-256, and what the snapshot covers of the database: per table,
the highest rowid included and that row itself (``tails``), so a snapshot of another or an older database file is
recognised. The store replays the rows after those rowids on top. ``read`` refuses anything off with a message
saying what: the store then loads from SQLite alone, slower but never wrong.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from gateway import atomicfile
from gateway.atomicfile import write_with_header
from gateway.state.packed import LEDGER_COLUMNS, LEDGER_TYPECODES, LOAD, Ledger

MAGIC = b"DNCGW-HISTORY\x00\x00\x01"
FORMAT_VERSION = 1
_MAX_HEADER = 1 << 20


class SnapshotError(ValueError):
    """The snapshot cannot be used (missing, truncated, corrupt, or for another database or layout)."""


def path_for(db: Path) -> Path:
    return db.with_name(db.name + ".packed")


def flat(ledgers: dict[str, Ledger]) -> dict[str, list[array[int]]]:
    """The ledgers' columns, copied: what :func:`write` writes, taken while nothing changes them."""
    return {name: ledgers[name].flat() for name in sorted(ledgers)}


def write(path: Path, columns_by_name: dict[str, list[array[int]]], meta: dict[str, Any]) -> dict[str, Any]:
    """Write :func:`flat`'s columns atomically (temp file, fsync, rename): a reader sees the old file or the whole
    new one. ``meta`` (what the store needs to trust it: the tails, the retention) goes into the header."""
    names = list(columns_by_name)
    columns = [col for name in names for col in columns_by_name[name]]
    digest = hashlib.sha256()
    for col in columns:
        digest.update(memoryview(col).cast("B"))
    header: dict[str, Any] = {
        **meta,
        "format": FORMAT_VERSION,
        "byteorder": sys.byteorder,
        "load": LOAD,
        "professionals": names,
        "columns": [len(c) for c in columns],
        "payload_bytes": sum(len(c) * c.itemsize for c in columns),
        "sha256": digest.hexdigest(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }

    def write_columns(f: IO[bytes]) -> None:
        for col in columns:
            col.tofile(f)

    write_with_header(path, MAGIC, header, write_columns)
    return header


def read(path: Path) -> tuple[dict[str, Any], dict[str, Ledger]]:
    """The header and the ledgers, or SnapshotError saying what is off.

    The columns are read straight into their arrays and hashed there (no copy of the whole file in memory);
    nothing is returned before the digest matched."""
    try:
        with path.open("rb") as f:
            return _read(path, f)
    except OSError as e:
        raise SnapshotError(f"{path}: cannot read: {e.strerror or e}") from None


def _read(path: Path, f: BinaryIO) -> tuple[dict[str, Any], dict[str, Ledger]]:
    try:
        header, _ = atomicfile.read_header(f, MAGIC, _MAX_HEADER, "history snapshot")
    except atomicfile.HeaderError as e:
        raise SnapshotError(f"{path}: {e}") from None
    if header.get("format") != FORMAT_VERSION:
        raise SnapshotError(f"{path}: unsupported snapshot format")
    if header.get("byteorder") != sys.byteorder:
        raise SnapshotError(f"{path}: written on a machine of another byte order ({header.get('byteorder')})")
    try:
        names = [str(p) for p in header["professionals"]]
        lengths = [int(c) for c in header["columns"]]
        if len(lengths) != LEDGER_COLUMNS * len(names):
            raise ValueError(f"{len(lengths)} columns for {len(names)} professionals")
        if sum(c * array(LEDGER_TYPECODES[i % LEDGER_COLUMNS]).itemsize for i, c in enumerate(lengths)) \
                != header["payload_bytes"]:
            raise ValueError("the columns do not add up to the payload's size")
    except (KeyError, ValueError, TypeError) as e:
        raise SnapshotError(f"{path}: corrupt snapshot header: {e}") from None
    digest = hashlib.sha256()
    flat: list[list[array[int]]] = []
    for p in range(len(names)):
        cols = []
        for c, code in enumerate(LEDGER_TYPECODES):
            col = array(code)
            try:
                col.fromfile(f, lengths[p * LEDGER_COLUMNS + c])
            except EOFError:
                raise SnapshotError(f"{path}: truncated snapshot: the payload is shorter than its header says") \
                    from None
            digest.update(memoryview(col).cast("B"))
            cols.append(col)
        flat.append(cols)
    if f.read(1):
        raise SnapshotError(f"{path}: corrupt snapshot: bytes after the payload")
    if digest.hexdigest() != header.get("sha256"):
        raise SnapshotError(f"{path}: corrupt snapshot: SHA-256 of the payload does not match its header")
    try:
        ledgers = {}
        for name in names:
            ledgers[name] = Ledger.from_flat(flat.pop(0))
    except ValueError as e:
        raise SnapshotError(f"{path}: corrupt snapshot: {e}") from None
    return header, ledgers
