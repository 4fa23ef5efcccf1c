"""Writing a file whole or not at all: a temporary file beside it, synced, then renamed over it.

Both snapshot formats (the registry's, ``registry/snapshot.py``; the call history's, ``state/snapshot.py``) are
a magic string, a JSON header with its length, then the payload; a reader never sees half of one, and a crash
leaves the previous file in place.
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
