"""Snapshots: round trip, and a corrupt or truncated file is refused with a clear error."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pyroaring import FrozenBitMap64

from gateway.registry import snapshot
from gateway.registry.model import KeyRanges, ListKind, ListMeta, RegistryError, RegistryList


def _list(members: FrozenBitMap64 | KeyRanges, kind: ListKind = ListKind.OPPOSITION) -> RegistryList:
    count = len(members) if isinstance(members, FrozenBitMap64) else 2
    return RegistryList(ListMeta("bloctel", kind, "unit", date(2026, 3, 1), count, snapshot.digest(members)), members)


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    path = tmp_path / "b.snapshot"
    snapshot.write(_list(FrozenBitMap64(range(33_600_000_000, 33_600_100_000, 7))), path)
    return path


def test_round_trip(snap: Path) -> None:
    lst = snapshot.read(snap)
    assert lst.meta.count == len(range(33_600_000_000, 33_600_100_000, 7))
    assert lst.meta.as_of == date(2026, 3, 1) and lst.kind is ListKind.OPPOSITION
    assert 33_600_000_007 in lst and 33_600_000_008 not in lst
    header, _ = snapshot.read_header(snap)
    assert header["sha256"] == lst.meta.sha256 and header["payload"] == "bitmap64"


def test_ranges_round_trip(tmp_path: Path) -> None:
    ranges = KeyRanges([(338_990_000_000, 339_000_000_000), (19_000_000_000, 19_010_000_000)])
    path = tmp_path / "p.snapshot"
    snapshot.write(_list(ranges, ListKind.BLOCKED_PREFIXES), path)
    back = snapshot.read(path)
    assert back.members == ranges and 19_000_000_001 in back


def test_truncated_snapshot_is_refused(snap: Path) -> None:
    data = snap.read_bytes()
    snap.write_bytes(data[:-100])
    with pytest.raises(RegistryError, match="truncated snapshot: payload has"):
        snapshot.read(snap)
    snap.write_bytes(data[:20])
    with pytest.raises(RegistryError, match="truncated snapshot"):
        snapshot.read(snap)


def test_flipped_byte_is_refused(snap: Path) -> None:
    data = bytearray(snap.read_bytes())
    data[-10] ^= 0xFF
    snap.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match="SHA-256"):
        snapshot.read(snap)


def test_not_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "x.snapshot"
    path.write_text("0612345678\n")
    with pytest.raises(RegistryError, match="bad magic"):
        snapshot.read(path)


def test_corrupt_header(snap: Path) -> None:
    data = bytearray(snap.read_bytes())
    data[len(snapshot.MAGIC) + 5] = ord("}")
    snap.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match="corrupt snapshot header"):
        snapshot.read(snap)


def test_write_is_atomic_on_failure(snap: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snap.read_bytes()

    def boom(*a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError, match="No space"):
        snapshot.write(_list(FrozenBitMap64([1, 2, 3])), snap)
    assert snap.read_bytes() == before
    assert [p.name for p in snap.parent.iterdir()] == [snap.name]
