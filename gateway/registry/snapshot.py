"""The snapshot file: a JSON header and a roaring payload, verified before use.

Layout::

    MAGIC (16 bytes) | header length (4 bytes, big-endian) | header (UTF-8 JSON) | payload

The header carries name, kind, source, as-of date, count, payload kind and size,
and the payload's SHA-256. ``read`` refuses a file whose magic, header, size or
digest is off, with a message saying which: a half-copied snapshot must never
replace the one serving.
"""

from __future__ import annotations

import hashlib
from array import array
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from pyroaring import FrozenBitMap64

from gateway import atomicfile
from gateway.atomicfile import write_with_header
from gateway.registry.model import KeyRanges, ListKind, ListMeta, RegistryError, RegistryList

MAGIC = b"DNCGW-SNAPSHOT\x00\x01"
FORMAT_VERSION = 1
_MAX_HEADER = 1 << 20


def payload_of(members: FrozenBitMap64 | KeyRanges) -> tuple[str, bytes]:
    if isinstance(members, KeyRanges):
        flat = array("Q")
        for lo, hi in members:
            flat.append(lo)
            flat.append(hi)
        if flat.itemsize != 8:  # pragma: no cover - every supported platform has 8-byte Q
            raise RegistryError("unsupported platform: array('Q') is not 64-bit")
        return "ranges", flat.tobytes()
    return "bitmap64", members.serialize()


def digest(members: FrozenBitMap64 | KeyRanges) -> str:
    return hashlib.sha256(payload_of(members)[1]).hexdigest()


def write(lst: RegistryList, path: Path) -> dict[str, Any]:
    """Write atomically (temp file, fsync, rename): readers see the old file or the whole new one."""
    kind, payload = payload_of(lst.members)
    header: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "name": lst.meta.name,
        "kind": str(lst.meta.kind),
        "source": lst.meta.source,
        "as_of": lst.meta.as_of.isoformat() if lst.meta.as_of else None,
        "count": lst.meta.count,
        "payload": kind,
        "payload_bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }

    def write_payload(f: IO[bytes]) -> None:
        f.write(payload)

    write_with_header(path, MAGIC, header, write_payload)
    return header


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    try:
        with path.open("rb") as f:
            header, offset = atomicfile.read_header(f, MAGIC, _MAX_HEADER)
    except atomicfile.HeaderError as e:
        raise RegistryError(f"{path}: {e}") from None
    if header.get("format") != FORMAT_VERSION:
        raise RegistryError(f"{path}: unsupported snapshot format {header.get('format')!r}")
    return header, offset


def read(path: Path) -> RegistryList:
    header, offset = read_header(path)
    data = path.read_bytes()[offset:]
    expected = header.get("payload_bytes")
    if len(data) != expected:
        raise RegistryError(f"{path}: truncated snapshot: payload has {len(data)} bytes, header says {expected}")
    if hashlib.sha256(data).hexdigest() != header.get("sha256"):
        raise RegistryError(f"{path}: corrupt snapshot: SHA-256 of the payload does not match its header")
    try:
        kind = ListKind(header["kind"])
        members: FrozenBitMap64 | KeyRanges
        if header["payload"] == "bitmap64":
            members = FrozenBitMap64.deserialize(data)
            count = len(members)
        elif header["payload"] == "ranges":
            flat = array("Q")
            flat.frombytes(data)
            members = KeyRanges(zip(flat[0::2], flat[1::2], strict=True))
            count = int(header["count"])
        else:
            raise RegistryError(f"{path}: unknown payload kind {header['payload']!r}")
        as_of = date.fromisoformat(header["as_of"]) if header.get("as_of") else None
    except (KeyError, ValueError, TypeError) as e:
        raise RegistryError(f"{path}: corrupt snapshot: {e}") from None
    if header["payload"] == "bitmap64" and count != header.get("count"):
        raise RegistryError(f"{path}: corrupt snapshot: {count} numbers, header says {header.get('count')}")
    meta = ListMeta(str(header.get("name", path.stem)), kind, str(header.get("source", path)), as_of, count,
                    header["sha256"])
    return RegistryList(meta, members)
