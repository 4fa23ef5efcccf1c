"""Snapshot files written whole or not at all, and their framing read back.

Both snapshot formats (the registry's, ``registry/snapshot.py``; the call history's, ``state/snapshot.py``) are
a magic string, a JSON header with its length, then the payload. A file is written to a temporary file beside
it, synced, then renamed over it: a reader never sees half of one, and a crash leaves the previous file in place.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any


def write_with_header(path: Path, magic: bytes, header: Mapping[str, Any],
                      write_payload: Callable[[IO[bytes]], None]) -> None:
    """``magic``, the header's length (4 bytes, big-endian) and its sorted JSON, then what ``write_payload``
    writes; atomically (the temporary file is removed when anything fails)."""
    raw = json.dumps(header, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(magic + struct.pack(">I", len(raw)) + raw)
            write_payload(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class HeaderError(ValueError):
    """A snapshot's framing is wrong; the message says how (the caller names the file)."""


def read_header(f: IO[bytes], magic: bytes, max_bytes: int, what: str = "snapshot") -> tuple[dict[str, Any], int]:
    """The JSON header after ``magic`` (at most ``max_bytes``: a corrupt length must not read gigabytes) and the
    payload's offset; ``f`` is left at the payload."""
    head = f.read(len(magic) + 4)
    if len(head) < len(magic) + 4 or not head.startswith(magic):
        raise HeaderError(f"not a dnc-gateway {what} (bad magic)")
    (n,) = struct.unpack(">I", head[len(magic):])
    if n > max_bytes:
        raise HeaderError(f"corrupt snapshot (header of {n} bytes)")
    raw = f.read(n)
    if len(raw) != n:
        raise HeaderError("truncated snapshot (header cut short)")
    try:
        header = json.loads(raw)
    except ValueError as e:
        raise HeaderError(f"corrupt snapshot header: {e}") from None
    if not isinstance(header, dict):
        raise HeaderError("corrupt snapshot header: not a JSON object")
    return header, len(magic) + 4 + n
