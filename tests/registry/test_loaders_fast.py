"""The loaders' block-wise fast path gives exactly what the per-line path gives."""

from __future__ import annotations

import random
from datetime import date

from pyroaring import BitMap, BitMap64

from gateway.numbers import Normaliser
from gateway.registry.loaders import (
    FR_OFFSET,
    LoadReport,
    bitmap_of,
    blocks_of_lines,
    national_view,
    offset_bitmap,
    parse_bitmap,
    parse_numbers,
)

FR = Normaliser("FR")
POOL = ["0612345678", "0692123456", "0700123456", "07001234567890", "+33612345678", "0033612345678", "abc", "",
        "# as_of: 2026-01-02", "  0612345678  ", "0612345678;ID1", "0612345678,ID2", "061234567", "0590123456",
        "06 12 34 56 78", "0012", "0612345678\r", "112", "3949", '"0612345678";x', "0512345678;a,b", "0262123456",
        "0639123456", "Telephone;Identifiant", "0812345678", "0912345678", "0112345678", "0612345678;"]


def reference(lines: list[bytes], header: bytes | None) -> tuple[list[int], list[tuple[int, str]], int, date | None]:
    """The per-line reading, spelled out: what every line means on its own."""
    keys, bad, n, as_of = [], [], 0, None
    for line_no, raw in enumerate(lines, 1):
        s = raw.strip()
        if not s:
            continue
        if s.startswith(b"#"):
            if as_of is None and s.startswith(b"# as_of:"):
                as_of = date.fromisoformat(s.split(b":")[1].strip().decode())
            continue
        if header is not None and line_no <= 2 and s.lower().startswith(header):
            continue
        n += 1
        if b";" in s or b"," in s:
            s = s.split(b";" if b";" in s else b",")[0].strip().strip(b'"')
        try:
            num = FR.parse(s.decode())
        except UnicodeDecodeError:
            bad.append((line_no, "not UTF-8"))
            continue
        if not num.key:
            bad.append((line_no, "not a phone number" if not num.is_valid else "short number"))
            continue
        keys.append(num.key)
    return keys, bad, n, as_of


def test_fast_path_equals_the_per_line_reading() -> None:
    rng = random.Random(5)
    for trial in range(120):
        n = rng.choice([1, 5, 50, 5000, 12000])
        if rng.random() < 0.6:
            lines = [f"0{rng.randrange(100_000_000, 1_000_000_000)}" for _ in range(n)]
            for _ in range(rng.randrange(0, 4)):
                lines.insert(rng.randrange(0, len(lines) + 1), rng.choice(POOL))
        else:
            lines = [rng.choice(POOL) for _ in range(n)]
        raw = [(x.encode("latin-1", "replace") if rng.random() < 0.1 else x.encode()) + b"\n" for x in lines]
        if rng.random() < 0.3:
            raw[rng.randrange(len(raw))] = b"\xe9\xff\n"
        header = rng.choice([None, b"telephone;"])
        keys, bad, count, as_of = reference(raw, header)
        r1, r2 = LoadReport("x"), LoadReport("x")
        got = parse_numbers(iter(raw), FR, r1, header=header)
        bm = parse_bitmap(blocks_of_lines(raw, 700), FR, r2, header=header)
        assert sorted(got) == sorted(keys), trial
        assert bm == bitmap_of(got)
        for r in (r1, r2):
            assert (r.lines, r.accepted, r.bad, r.as_of) == (count, len(keys), bad[:50], as_of), trial


def test_offset_bitmap_and_national_view_are_inverse() -> None:
    rng = random.Random(1)
    for offset in (FR_OFFSET, 262_000_000_000, 590_000_000_000, 0, (5 << 32) - 10):
        nsn = BitMap([*rng.sample(range(10**9), 2000), 0, 10**9 - 1])
        keys = offset_bitmap(nsn, offset)
        assert set(keys) == {offset + v for v in nsn}
        noise = BitMap64([offset + 10**9, offset + 2 * 10**9])
        assert national_view(keys | noise, offset) == nsn
