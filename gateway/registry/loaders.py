"""Loaders for registry files: plain lists, Bloctel-style CSV, prefix lists, snapshots.

A bad line never stops a load: it is counted and reported with its line number.
The load fails only when bad lines exceed ``max_bad_share`` of the file, which
is what a truncated download or the wrong file looks like.
"""

from __future__ import annotations

import re
import struct
from array import array
from collections.abc import Iterable, Iterator
from datetime import date
from itertools import islice
from pathlib import Path
from typing import IO

from pyroaring import BitMap, BitMap64, FrozenBitMap, FrozenBitMap64

from gateway.numbers import _OVERSEAS, Kind, Normaliser
from gateway.registry import consent_csv, guard, national, relationship_csv, snapshot
from gateway.registry.model import (
    MIN_BAD_LINES,
    KeyRanges,
    ListFormat,
    ListKind,
    ListMeta,
    RegistryError,
    RegistryList,
)
from gateway.registry.report import MAX_BAD_SAMPLES, LoadReport

FORMATS = tuple(f.value for f in ListFormat)
DETECT_LINES = 20  # data lines of a file's head that format detection looks at
_FR_FAST_EXCLUDED = frozenset({"262", "263", "692", "693", "269", "639", "590", "690", "691", "594",
                               "694", "596", "696", "697"})


def detect_format(path: Path, kind: ListKind, home_country: str = "") -> str:
    """The format of a list file from its first bytes: a snapshot's magic, a Bloctel header, or the first data
    lines all in one national registry layout (:func:`national.detect`); plain text otherwise."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith(snapshot.MAGIC):
        return "snapshot"
    if kind is ListKind.BLOCKED_PREFIXES:
        return "prefixes"
    raws = head.lstrip(b"\xef\xbb\xbf").splitlines()
    if len(head) == 4096 and len(raws) > 1:
        raws.pop()  # cut short by the read
    data = [s for raw in raws if (s := raw.strip()) and not s.startswith(b"#")]
    if data and relationship_csv.looks_like(data[0]):
        return "relationship-csv"
    if data and consent_csv.looks_like(data[0]):
        return "consent-csv"
    if data and data[0].lower().startswith(b"telephone;"):
        return "bloctel-csv"
    return national.detect(data[:DETECT_LINES], home_country) or "text"


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        first = f.readline().removeprefix(b"\xef\xbb\xbf")
        if first:
            yield first
        yield from f


BLOCK_BYTES = 4 << 20
SUB_BLOCK_LINES = 4096
FR_OFFSET = 33_000_000_000  # key of a mainland number = FR_OFFSET + its 9-digit national significant number
_DIGITS_NL = b"0123456789\n"


def _nsn_ranges() -> FrozenBitMap:
    bm = BitMap()
    for p in _FR_FAST_EXCLUDED:
        bm.add_range(int(p) * 1_000_000, (int(p) + 1) * 1_000_000)
    bm.add_range(700_000_000, 710_000_000)  # 070: M2M numbers have 14 digits, a 10-digit 070 is not a number
    return FrozenBitMap(bm)


# National significant numbers that look mainland but are not +33 + NSN: overseas departments and 070.
FR_SLOW_NSN = _nsn_ranges()


def read_blocks(path: Path, size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The file as blocks of whole lines (each ends with LF, the last one too), BOM removed."""
    with path.open("rb") as f:
        head = f.read(3)
        yield from stream_blocks(f, b"" if head == b"\xef\xbb\xbf" else head, size)


def stream_blocks(stream: IO[bytes], first: bytes = b"", size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """``first`` then the rest of ``stream`` as blocks of whole LF-terminated lines (the last line gets an LF)."""
    rest = first
    while chunk := stream.read(size):
        chunk = rest + chunk
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            rest = chunk
            continue
        rest = chunk[cut:]
        yield chunk[:cut]
    if rest:
        yield rest if rest.endswith(b"\n") else rest + b"\n"


def blocks_of_lines(lines: Iterable[bytes], size: int = 65536) -> Iterator[bytes]:
    """Lines (with or without their LF) regrouped as LF-terminated blocks, so that the fast path sees many at once."""
    it = iter(lines)
    while batch := list(islice(it, size)):
        block = b"".join(batch)
        if block.count(b"\n") != len(batch) or not block.endswith(b"\n"):
            block = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in batch)
        yield block


def national_block(kb: bytes) -> array[int] | None:
    """National significant numbers of a block whose every line is exactly ``0`` + 9 digits (not ``00``), else None.

    Whole-block checks on bytes (C loops) instead of a Python loop per line: this is
    what lets a 15M-line file load, and a call file scrub, at millions of lines a second.
    """
    k = len(kb) // 11
    if not k or len(kb) != 11 * k or kb.count(b"\n") != k or kb[10::11] != b"\n" * k:
        return None
    if kb.translate(None, _DIGITS_NL) or kb[0::11] != b"0" * k or b"0" in kb[1::11]:
        return None
    return array("I", map(int, kb.split()))


def _first_field(kb: bytes, column: int) -> bytes | None:
    """The block with every line cut to its ``column``-th field, as the per-line path would cut it; None if unsure."""
    semi, comma = b";" in kb, b"," in kb
    if column or (semi and comma) or b'"' in kb:
        return None
    if semi:
        return _SEMI_TAIL.sub(b"", kb)
    if comma:
        return _COMMA_TAIL.sub(b"", kb)
    return kb


_SEMI_TAIL = re.compile(rb";[^\n]*")
_COMMA_TAIL = re.compile(rb",[^\n]*")


def offset_bitmap(nsn: BitMap, offset: int) -> BitMap64:
    """``{offset + n for n in nsn}`` built without touching the values one by one.

    The 64-bit portable format is a list of (high 32 bits, 32-bit roaring bitmap): shifting
    the 32-bit bitmap and writing the bucket header is all it takes.
    """
    out = BitMap64()
    high, low = divmod(offset, 1 << 32)
    parts = ((high, nsn.shift(low) if low else nsn), (high + 1, nsn.shift(low - (1 << 32))))
    for h, part in parts:
        if len(part):
            out |= BitMap64.deserialize(struct.pack("<QI", 1, h) + part.serialize())
    return out


def national_view(members: BitMap64 | FrozenBitMap64, offset: int = FR_OFFSET, span: int = 1_000_000_000) -> BitMap:
    """``{k - offset for k in members if offset <= k < offset + span}`` as a 32-bit bitmap (offset_bitmap's inverse)."""
    out = BitMap()
    for h in range(offset >> 32, ((offset + span - 1) >> 32) + 1):
        lo, hi = max(offset, h << 32), min(offset + span, (h + 1) << 32)
        part = members & BitMap64(range(lo, hi))
        if len(part):
            low = BitMap.deserialize(part.serialize()[12:])
            out |= low.shift((h << 32) - offset)
    return out


class _Sink:
    """Where parsed keys go: in file order (``parse_numbers``) or straight into bitmaps (``parse_bitmap``)."""

    def __init__(self, ordered: bool) -> None:
        self.ordered = ordered
        self.keys: array[int] = array("Q")
        self.nsn = BitMap()
        self.overseas: list[tuple[int, BitMap]] = []
        self.accepted = 0


def _parse_line(s: bytes, line_no: int, normaliser: Normaliser, report: LoadReport, column: int,
                header: bytes | None) -> int | None:
    """The key of one stripped, non-comment line; None (and a report entry when bad) otherwise."""
    if header is not None and line_no <= 2 and s.lower().startswith(header):
        return None
    report.lines += 1
    if column or b";" in s or b"," in s:
        sep = b";" if b";" in s else b","
        fields = s.split(sep)
        if column >= len(fields):
            report.add_bad(line_no, f"no column {column + 1}", s)
            return None
        s = fields[column].strip().strip(b'"')
    if normaliser.home_country == "FR" and len(s) == 10 and s[0] == 48 and s.isdigit() and s[1] != 48:
        n = int(s)
        if n not in FR_SLOW_NSN:
            return FR_OFFSET + n
    try:
        text = s.decode("utf-8")
    except UnicodeDecodeError:
        report.add_bad(line_no, "not UTF-8")
        return None
    num = normaliser.parse(text)
    if not num.key:
        report.add_bad(line_no, "not a phone number" if num.kind is Kind.INVALID else "short number", s)
        return None
    return num.key


def _slow_lines(lines: list[bytes], first_line: int, normaliser: Normaliser, report: LoadReport, column: int,
                header: bytes | None, sink: _Sink) -> None:
    append = sink.keys.append
    for i, raw in enumerate(lines):
        s = raw.strip()
        if not s:
            continue
        if s[0] == 35:  # '#'
            report.comment(s)
            continue
        key = _parse_line(s, first_line + i, normaliser, report, column, header)
        if key is not None:
            append(key)
            sink.accepted += 1


def _fast_block(kb: bytes, sink: _Sink) -> bool:
    """Take a whole block of plain national numbers in one go; False when it must go line by line."""
    nsn = national_block(kb)
    if nsn is None:
        return False
    bm = BitMap(nsn)
    if bm.intersect(FR_SLOW_NSN):
        if bm.intersect(_FR_M2M):
            return False  # bad lines to report with their numbers: the per-line path does it
        for cc, ranges in _OVERSEAS_NSN.items():
            part = bm & ranges
            if not part:
                continue
            if sink.ordered:
                sink.keys.extend(map((cc * 1_000_000_000).__add__, part))
            else:
                sink.overseas.append((cc, part))
        bm -= FR_SLOW_NSN
        if sink.ordered:
            sink.keys.extend(map(FR_OFFSET.__add__, bm))
    elif sink.ordered:
        sink.keys.extend(map(FR_OFFSET.__add__, nsn))
    if not sink.ordered:
        sink.nsn |= bm
    sink.accepted += len(nsn)
    return True


def _overseas_nsn() -> dict[int, FrozenBitMap]:
    """Overseas departments dialled nationally, by country code: their key is cc * 10^9 + NSN."""
    out: dict[int, BitMap] = {}
    for nsn3, (cc, _region, _zones) in _OVERSEAS.items():
        out.setdefault(int(cc), BitMap()).add_range(int(nsn3) * 1_000_000, (int(nsn3) + 1) * 1_000_000)
    return {cc: FrozenBitMap(bm) for cc, bm in out.items()}


_FR_M2M = FrozenBitMap(range(700_000_000, 710_000_000))
_OVERSEAS_NSN = _overseas_nsn()


def _parse_blocks(blocks: Iterable[bytes], normaliser: Normaliser, report: LoadReport, column: int,
                  header: bytes | None, sink: _Sink) -> None:
    fast = normaliser.home_country == "FR"
    line_no = 1
    for block in blocks:
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        n_lines = block.count(b"\n")
        kb = _first_field(block, column) if fast else None
        if kb is None or not _fast_block(kb, sink):
            lines = block.split(b"\n")[:-1]
            for i in range(0, len(lines), SUB_BLOCK_LINES):
                sub = lines[i : i + SUB_BLOCK_LINES]
                if fast:
                    joined = b"\n".join(sub) + b"\n"
                    skb = _first_field(joined, column)
                    if skb is not None and _fast_block(skb, sink):
                        report.lines += len(sub)
                        continue
                _slow_lines(sub, line_no + i, normaliser, report, column, header, sink)
        else:
            report.lines += n_lines
        line_no += n_lines
    report.accepted = sink.accepted


def parse_numbers(
    lines: Iterable[bytes], normaliser: Normaliser, report: LoadReport, *, column: int = 0,
    header: bytes | None = None,
) -> array[int]:
    """Keys of every well-formed line; bad lines go to ``report``.

    Lines are taken by blocks: a block of plain 10-digit national numbers is checked
    and converted with a handful of whole-block operations; only blocks holding
    anything else (comments, headers, other spellings, bad lines) go line by line.
    Within a block holding overseas numbers, keys come out grouped rather than in file order.
    """
    sink = _Sink(ordered=True)
    _parse_blocks(blocks_of_lines(lines), normaliser, report, column, header, sink)
    return sink.keys


def parse_bitmap(
    blocks: Iterable[bytes], normaliser: Normaliser, report: LoadReport, *, column: int = 0,
    header: bytes | None = None,
) -> FrozenBitMap64:
    """Like ``bitmap_of(parse_numbers(...))`` without the 64-bit key array: mainland numbers go into a
    32-bit bitmap of national numbers, offset into the 64-bit one at the end."""
    sink = _Sink(ordered=False)
    _parse_blocks(blocks, normaliser, report, column, header, sink)
    bm = offset_bitmap(sink.nsn, FR_OFFSET)
    for cc, part in sink.overseas:
        bm |= offset_bitmap(part, cc * 1_000_000_000)
    bm |= bitmap_of(sink.keys)
    bm.run_optimize()
    return FrozenBitMap64(bm)


def bitmap_of(keys: array[int]) -> FrozenBitMap64:
    """A frozen, run-optimised bitmap; built in chunks because roaring inserts are cache-bound."""
    bm = BitMap64()
    step = 1 << 20
    for i in range(0, len(keys), step):
        bm |= BitMap64(keys[i : i + step])
    bm.run_optimize()
    return FrozenBitMap64(bm)


def parse_prefix(text: str, normaliser: Normaliser) -> list[tuple[int, int]] | None:
    """``0899``, ``+3389``, ``003389``, ``33899``, ``0590`` or ``+1900`` -> key intervals for every E.164
    length, read as numbers are (:meth:`Normaliser.prefix`: a national overseas prefix is its own country's)."""
    found = normaliser.prefix(text)
    if found is None:
        return None
    out = []
    for digits in found:
        p = int(digits)
        for total in range(max(len(digits), 4), 16):
            scale = 10 ** (total - len(digits))
            out.append((p * scale, (p + 1) * scale))
    return out


def load_prefixes(path: Path, normaliser: Normaliser, report: LoadReport) -> KeyRanges:
    intervals: list[tuple[int, int]] = []
    line_no = 0
    for raw in _lines(path):
        line_no += 1
        s = raw.strip()
        if not s:
            continue
        if s.startswith(b"#"):
            report.comment(s)
            continue
        report.lines += 1
        try:
            text = s.split(b";")[0].split(b",")[0].decode("utf-8")
        except UnicodeDecodeError:
            report.add_bad(line_no, "not UTF-8")
            continue
        found = parse_prefix(text, normaliser)
        if found is None:
            report.add_bad(line_no, "not a number prefix", s)
            continue
        intervals.extend(found)
        report.accepted += 1
    return KeyRanges(intervals)


def load_list(
    path: Path,
    *,
    name: str,
    kind: ListKind,
    normaliser: Normaliser,
    fmt: str = "auto",
    as_of: date | None = None,
    max_age_days: int | None = None,
    max_bad_share: float = 0.05,
    min_bad_lines: int = MIN_BAD_LINES,
) -> tuple[RegistryList, LoadReport]:
    """Load one list file; raises RegistryError with a clear message when it cannot be trusted."""
    if fmt not in FORMATS:
        raise RegistryError(f"{name}: unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if not path.is_file():
        raise RegistryError(f"{name}: {path}: no such file")
    if fmt == "auto":
        fmt = detect_format(path, kind, normaliser.home_country)
    report = LoadReport(str(path), fmt)
    if fmt == "snapshot":
        lst = snapshot.read(path)
        if lst.kind is not kind:
            raise RegistryError(f"{name}: {path}: snapshot holds a {lst.kind} list, config says {kind}")
        report.lines = report.accepted = lst.meta.count
        report.as_of = lst.meta.as_of
        meta = ListMeta(name, kind, str(path), as_of or lst.meta.as_of, lst.meta.count, lst.meta.sha256,
                        max_age_days)
        return RegistryList(meta, lst.members), report
    members: FrozenBitMap64 | KeyRanges
    if fmt == "prefixes":
        members = load_prefixes(path, normaliser, report)
    elif fmt == "consent-csv":
        try:
            report.consents = consent_csv.read(path, normaliser, report)
        except ValueError as e:
            raise RegistryError(f"{name}: {path}: {e}") from None
        members = report.consents.members
    elif fmt == "relationship-csv":
        if kind not in (ListKind.CUSTOMERS, ListKind.INQUIRIES):
            raise RegistryError(f"{name}: {path}: a relationship-csv file is a customers or inquiries list, the "
                                f"config says {kind}")
        try:
            report.relationships = relationship_csv.read(path, normaliser, report)
        except ValueError as e:
            raise RegistryError(f"{name}: {path}: {e}") from None
        members = report.relationships.members
    elif fmt in national.LAYOUTS:
        members = national.parse_national(read_blocks(path), national.LAYOUTS[fmt], report)
    else:
        header = b"telephone;" if fmt == "bloctel-csv" else None
        members = parse_bitmap(read_blocks(path), normaliser, report, header=header)
    report.refuse_if_too_bad(f"{name}: {path}", max_bad_share, min_bad_lines)
    if fmt != "consent-csv":
        guard.refuse_if_cut(f"{name}: {path}", path, report, MAX_BAD_SAMPLES)
    if report.lines == 0 and fmt != "prefixes" and kind is ListKind.OPPOSITION:
        raise RegistryError(f"{name}: {path}: the file holds no numbers (an empty opposition list is "
                            f"almost always a failed export)")
    count = len(members) if isinstance(members, FrozenBitMap64) else report.accepted
    meta = ListMeta(name, kind, str(path), as_of or report.as_of, count, snapshot.digest(members),
                    max_age_days, report.bad_count)
    return RegistryList(meta, members), report
