"""``dnc-gateway scrub``: screen a call file in bulk, with the same engine and rules as ``check``.

The file is read in blocks and never held whole. Each number's decision comes from
:class:`Screener`, which calls the engine once per *signature* and caches it: for one
campaign at one instant, with no call history (scrub records nothing), the engine's
answer depends on the number only through its kind, region, time zones and which of the
campaign's lists hold it. A block of plain 10-digit national numbers is screened with
whole-block bitmap operations: only its lines whose national number is in the
campaign's "hot" set (on a list, overseas, or of a kind whose answer differs) are looked
at one by one; every other line gets the precomputed base decision. Property tests check
this against ``Gateway.decide`` line by line.

``--ignore-hours`` (planning a campaign ahead) turns off the campaign's ``check_hours``
and ``check_holidays`` switches for this run: the same rules as ``check`` minus those two,
evaluated at ``--at`` (default now) so the regime and list freshness are still those of
that date.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import compress, repeat
from pathlib import Path
from typing import IO, Any

from pyroaring import BitMap, FrozenBitMap64

from gateway.numbers import Kind, Normaliser, Number
from gateway.policy.decision import Decision, Reason, Verdict
from gateway.policy.engine import Call, Engine
from gateway.registry.loaders import national_block, national_view, stream_blocks
from gateway.registry.model import KeyRanges, Registries
from gateway.state.model import EMPTY_HISTORY

BLOCK_BYTES = 1 << 20
SUB_BLOCK_LINES = 2048
MAX_INVALID_LISTED = 1000  # the summary lists this many invalid lines; the rejects file has them all
BOM = b"\xef\xbb\xbf"
HEADER_NAMES = ("telephone", "phone", "numero", "tel", "number", "mobile", "portable", "msisdn", "gsm", "fixe",
                "contact", "num")
DELIMITERS = ";,\t|"

__all__ = ["Layout", "Screener", "Summary", "add_arguments", "detect_layout", "planning_engine", "run", "scrub_stream"]


# -- layout of the input ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Layout:
    """How to find the number on a line: ``delimiter`` None means one number per line."""

    delimiter: bytes | None = None
    column: int = 0
    header: bool = False
    bloctel: bool = False

    @property
    def name(self) -> str:
        if self.bloctel:
            return "bloctel"
        return "lines" if self.delimiter is None else "csv"

    def describe(self) -> dict[str, Any]:
        return {"format": self.name, "delimiter": self.delimiter.decode() if self.delimiter else None,
                "column": self.column + 1, "header": self.header}


def _fold(text: str) -> str:
    """Header cell as a bare lowercase ASCII word: ``Numéro de téléphone`` -> ``numerodetelephone``."""
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", t)


def _looks_like_header_cell(cell: str) -> bool:
    folded = _fold(cell)
    return bool(folded) and any(folded.startswith(n) or folded.endswith(n) for n in HEADER_NAMES)


def _split(line: bytes, delimiter: bytes) -> list[bytes]:
    if b'"' not in line:
        return line.split(delimiter)
    text = line.decode("utf-8", "surrogateescape")
    row = next(csv.reader([text], delimiter=delimiter.decode()), [])
    return [c.encode("utf-8", "surrogateescape") for c in row]


def detect_layout(sample: bytes, normaliser: Normaliser, *, fmt: str = "auto", delimiter: str | None = None,
                  column: str | None = None) -> Layout:
    """Guess the layout from the first lines: Bloctel header, a delimiter (csv.Sniffer), the number column.

    The column is the one named like a phone number in the header, else the one whose cells parse as
    numbers most often. ``column`` may be a 1-based index or a header name.
    """
    sample = sample.removeprefix(BOM)
    lines = [ln.rstrip(b"\r") for ln in sample.split(b"\n")[:200]]
    if not sample.endswith(b"\n") and len(lines) > 1:
        lines = lines[:-1]  # cut mid-line
    lines = [ln for ln in lines if ln.strip()]
    first = lines[0] if lines else b""
    if fmt == "bloctel" or (fmt == "auto" and first.lower().startswith(b"telephone;")):
        return Layout(b";", 0, header=first.lower().startswith(b"telephone;"), bloctel=True)
    text = "\n".join(ln.decode("utf-8", "replace") for ln in lines)
    if delimiter is not None:
        delim: str | None = {"tab": "\t", "\\t": "\t"}.get(delimiter, delimiter)
        if delim is not None and len(delim) != 1:
            raise ValueError(f"--delimiter {delimiter!r}: one character expected")
    elif fmt == "lines" or not any(d in text for d in DELIMITERS):
        delim = None
    else:
        try:
            delim = csv.Sniffer().sniff(text[:65536], delimiters=DELIMITERS).delimiter
        except csv.Error:
            counts = {d: first.decode("utf-8", "replace").count(d) for d in DELIMITERS}
            delim = max(counts, key=lambda d: counts[d]) if any(counts.values()) else None
    if delim is None:
        header = bool(first) and not normaliser.parse(first.decode("utf-8", "replace").strip()).is_valid \
            and _looks_like_header_cell(first.decode("utf-8", "replace"))
        return Layout(None, 0, header=header)
    d = delim.encode()
    rows = [[c.decode("utf-8", "replace").strip().strip('"') for c in _split(ln, d)] for ln in lines]
    head = rows[0] if rows else []
    col: int | None = None
    if column is not None:
        if column.isdigit() and int(column) >= 1:
            col = int(column) - 1
        else:
            matches = [i for i, c in enumerate(head) if _fold(c) == _fold(column)]
            if not matches:
                raise ValueError(f"--column {column!r}: no such column in the header ({', '.join(head)})")
            col = matches[0]
    named = [i for i, c in enumerate(head) if _looks_like_header_cell(c)]
    if col is None:
        width = max((len(r) for r in rows), default=1)
        scores = [sum(1 for r in rows[1:] if i < len(r) and normaliser.parse(r[i]).key) for i in range(width)]
        valid_named = [i for i in named if scores[i]] or named
        best = max(range(width), key=lambda i: scores[i]) if width else 0
        col = valid_named[0] if valid_named else best
    header = bool(head) and col < len(head) and not normaliser.parse(head[col]).is_valid and (
        col in named or any(c and not normaliser.parse(c).is_valid and not c.isdigit() for c in head))
    return Layout(d, col, header=header)


# -- decisions ------------------------------------------------------------------------------------

Signature = tuple[Kind, str, tuple[str, ...], int]


class Screener:
    """Decisions for one campaign at one instant, with no history: one engine call per signature."""

    def __init__(self, engine: Engine, regs: Registries, normaliser: Normaliser, campaign: str, at: datetime,
                 caller_id: str | None = None) -> None:
        if at.tzinfo is None:
            raise ValueError("scrub needs an aware datetime")
        self.engine = engine
        self.regs = regs
        self.normaliser = normaliser
        self.campaign = campaign
        self.at = at
        self.caller_id = caller_id
        c = engine.campaigns[campaign]
        names = sorted({*c.lists, c.customers, c.consent} - {""})
        self.list_names = [n for n in names if regs.get(n) is not None]
        self.members: list[FrozenBitMap64 | KeyRanges] = [regs.lists[n].members for n in self.list_names]
        self.cache: dict[Signature, Decision] = {}
        self.engine_calls = 0
        self.fast = normaliser.home_country == "FR"
        self._classes: list[tuple[Number, int] | None] = []
        self.views: list[BitMap] = []
        self.spans: list[tuple[tuple[Kind, str, tuple[str, ...]], BitMap]] = []
        self.invalid_span = BitMap()
        self.decisions: list[Decision] = []
        self.allowed_codes: set[int] = set()
        self._codes: dict[int, int] = {}
        self.base_code = -1
        self.hot = BitMap()
        self.base: Decision | None = None
        if self.fast:
            self._prepare_fast()

    def mask(self, key: int) -> int:
        m = 0
        for i, members in enumerate(self.members):
            if key in members:
                m |= 1 << i
        return m

    def decide(self, number: Number) -> Decision:
        """The engine's decision for ``number``; exact, because everything it depends on is in the signature."""
        key = number.key
        sig = (number.kind, number.region, number.zones, self.mask(key) if key else 0)
        found = self.cache.get(sig)
        if found is None:
            found = self.cache[sig] = self.engine.decide(Call(number, self.campaign, self.caller_id), self.regs,
                                                         EMPTY_HISTORY, self.at)
            self.engine_calls += 1
        return found

    def decide_nsn(self, nsn: int) -> Decision | None:
        """Decision for the national number ``0`` + ``nsn`` (9 digits, not 0-led); None when it is not a number.

        Every national number of one 3-digit prefix class shares kind, region and zones (numbers.py: the
        kind follows the first digit, overseas departments their 3-digit prefix), so the signature is the
        class's plus the list mask, and the number is parsed only when its signature is new.
        """
        cls = self._classes[nsn // 1_000_000]
        if cls is None:
            return None
        proto, offset = cls
        found = self.cache.get((proto.kind, proto.region, proto.zones, self.mask(offset + nsn)))
        return found if found is not None else self.decide(self.normaliser.parse(f"0{nsn:09d}"))

    def _prepare_fast(self) -> None:
        """The hot set of national numbers (any whose decision may differ from the base one) and the base.

        Also the per-list 32-bit views of national numbers (``views``) and the classes grouped by
        (kind, region, zones) (``spans``), with which ``classify`` decides a whole block's hot numbers
        with bitmap operations, one engine call per new (class group, list mask).
        """
        classes: list[tuple[Number, int] | None] = [None] * 1000
        for p in range(100, 1000):
            proto = self.normaliser.parse(f"0{p:03d}123456")
            if proto.key:
                classes[p] = (proto, proto.key - (p * 1_000_000 + 123_456))
        self._classes = classes
        spans: dict[tuple[Kind, str, tuple[str, ...]], BitMap] = {}
        invalid = BitMap()
        for p, c in enumerate(classes):
            if c is None:
                invalid.add_range(p * 1_000_000, (p + 1) * 1_000_000)
            else:
                spans.setdefault((c[0].kind, c[0].region, c[0].zones), BitMap()).add_range(
                    p * 1_000_000, (p + 1) * 1_000_000)
        self.views = [BitMap() for _ in self.members]
        for offset in sorted({c[1] for c in classes if c is not None}):
            span = BitMap()
            for p, c in enumerate(classes):
                if c is not None and c[1] == offset:
                    span.add_range(p * 1_000_000, (p + 1) * 1_000_000)
            for i, members in enumerate(self.members):
                view = BitMap()
                if isinstance(members, KeyRanges):
                    for lo, hi in members:
                        lo, hi = max(lo, offset), min(hi, offset + 1_000_000_000)
                        if lo < hi:
                            view.add_range(lo - offset, hi - offset)
                else:
                    view = national_view(members, offset)
                self.views[i] |= view & span
        hot = BitMap()
        for view in self.views:
            view.run_optimize()
            hot |= view
        self.spans = [(sig, span) for sig, span in spans.items()]
        self.invalid_span = invalid
        bases: dict[int, Decision] = {}
        for p, c in enumerate(classes):
            if c is None:
                continue
            # A number of this class on none of the lists: its decision is every such number's.
            free = BitMap(range(p * 1_000_000, (p + 1) * 1_000_000)) - hot
            if free:
                bases[p] = self.decide(self.normaliser.parse(f"0{free.min():09d}"))
        if not bases:
            self.fast = False
            return
        base = bases.get(612) or next(iter(bases.values()))
        for p, c in enumerate(classes):
            if c is None or p not in bases or _outcome(bases[p]) != _outcome(base):
                hot.add_range(p * 1_000_000, (p + 1) * 1_000_000)
        hot.run_optimize()
        self.hot = hot
        self.base = base
        self.base_code = self.code(base)

    def code(self, d: Decision) -> int:
        """A small integer per distinct decision, so that a block's lines can be sorted by C loops."""
        found = self._codes.get(id(d))
        if found is None:
            found = self._codes[id(d)] = len(self.decisions)
            self.decisions.append(d)
            if d.verdict is Verdict.ALLOW:
                self.allowed_codes.add(found)
        return found

    def classify(self, hot: BitMap) -> dict[int, int]:
        """Decision code of every national number in ``hot`` (-1: not a number), by bitmap partitions."""
        out: dict[int, int] = {}
        bad = hot & self.invalid_span
        if bad:
            out.update(dict.fromkeys(bad, -1))
        for sig, span in self.spans:
            group = hot & span
            if not group:
                continue
            parts = [(0, group)]
            for i, view in enumerate(self.views):
                split: list[tuple[int, BitMap]] = []
                for m, part in parts:
                    inside = part & view
                    if inside:
                        split.append((m | 1 << i, inside))
                        part = part - inside
                    if part:
                        split.append((m, part))
                parts = split
            for m, part in parts:
                found = self.cache.get((*sig, m))
                if found is None:
                    found = self.decide(self.normaliser.parse(f"0{part.min():09d}"))
                out.update(dict.fromkeys(part, self.code(found)))
        return out


def _outcome(d: Decision) -> tuple[object, ...]:
    return (d.verdict, d.reason, d.rule, d.would_block, d.detail)


# -- the streaming scrub --------------------------------------------------------------------------

@dataclass(slots=True)
class Summary:
    lines: int = 0
    kept: int = 0
    removed: int = 0
    would_block: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    kept_by_reason: Counter[str] = field(default_factory=Counter)
    invalid: list[tuple[int, str]] = field(default_factory=list)
    invalid_count: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    engine_calls: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines, "kept": self.kept, "removed": self.removed, "would_block": self.would_block,
            "by_reason": dict(self.by_reason.most_common()), "kept_by_reason": dict(self.kept_by_reason.most_common()),
            "invalid": {"count": self.invalid_count, "lines": [{"line": n, "detail": d} for n, d in self.invalid],
                        "listed": len(self.invalid)},
            "notes": self.notes, "seconds": round(self.seconds, 3),
            "lines_per_second": round(self.lines / self.seconds) if self.seconds else None,
            "engine_calls": self.engine_calls,
        }


_NEEDS_QUOTES = re.compile(rb'[;,\t|"\r\n]')


def _cell(text: str) -> bytes:
    raw = text.encode()
    return b'"' + raw.replace(b'"', b'""') + b'"' if _NEEDS_QUOTES.search(raw) else raw


class _Writer:
    """Kept lines to OUT, removed lines (with reason, detail, line number) to the rejects file."""

    def __init__(self, out: IO[bytes], rejects: IO[bytes], layout: Layout, summary: Summary) -> None:
        self.out = out
        self.rejects = rejects
        self.delim = layout.delimiter or b";"
        self.summary = summary
        self._tails: dict[tuple[str, str], bytes] = {}

    def header(self, line: bytes | None, layout: Layout) -> None:
        d = self.delim
        extra = d + b"dnc_reason" + d + b"dnc_detail" + d + b"dnc_line"
        if line is not None:
            eol = b"\r\n" if line.endswith(b"\r") else b"\n"
            self.out.write(line + b"\n")
            self.rejects.write(line.removesuffix(b"\r") + extra + eol)
        else:
            self.rejects.write(b"number" + extra + b"\n")

    def keep(self, d: Decision, n: int = 1) -> None:
        self.summary.kept += n
        if d.reason is not None:
            self.summary.kept_by_reason[str(d.reason)] += n
        if d.would_block:
            self.summary.would_block += n

    def _tail(self, reason: str, detail: str) -> bytes:
        tail = self._tails.get((reason, detail))
        if tail is None:
            d = self.delim
            tail = self._tails[(reason, detail)] = d + reason.encode() + d + _cell(detail) + d
        return tail

    def reject_many(self, lines: list[bytes], line_nos: Iterable[int], d: Decision, crlf: bool) -> None:
        """Many lines with one decision: formatted by C loops (``bytes %``) when no line carries a CR."""
        reason = str(d.reason)
        if crlf:
            for line, n in zip(lines, line_nos, strict=False):
                self.reject(line, n, reason, d.detail)
            return
        self.summary.removed += len(lines)
        self.summary.by_reason[reason] += len(lines)
        template = b"%s" + self._tail(reason, d.detail).replace(b"%", b"%%") + b"%d\n"
        self.rejects.write(b"".join(map(template.__mod__, zip(lines, line_nos, strict=False))))

    def reject(self, line: bytes, line_no: int, reason: str, detail: str) -> None:
        s = self.summary
        s.removed += 1
        s.by_reason[reason] += 1
        tail = self._tail(reason, detail)
        cr = line.endswith(b"\r")
        self.rejects.write((line[:-1] if cr else line) + tail + str(line_no).encode() + (b"\r\n" if cr else b"\n"))

    def invalid(self, line: bytes, line_no: int, detail: str) -> None:
        s = self.summary
        s.invalid_count += 1
        if len(s.invalid) < MAX_INVALID_LISTED:
            s.invalid.append((line_no, detail))
        self.reject(line, line_no, str(Reason.INVALID_NUMBER), detail)


def _field_regex(delim: bytes, column: int) -> re.Pattern[bytes]:
    d = re.escape(delim)
    nd = b"[^" + d + b"\\n]*"
    return re.compile(b"^(?:" + nd + d + b"){" + str(column).encode() + b"}(" + nd + b")[^\\n]*$", re.M)


class _BlockScrubber:
    def __init__(self, screener: Screener, layout: Layout, writer: _Writer) -> None:
        self.s = screener
        self.layout = layout
        self.w = writer
        self.field_re = _field_regex(layout.delimiter, layout.column) if layout.delimiter else None

    # The per-line path: any spelling, any column, bad lines.
    def line(self, raw: bytes, line_no: int) -> None:
        w = self.w
        body = raw.removesuffix(b"\r")
        if not body.strip():
            w.invalid(raw, line_no, "empty line")
            return
        cell = body
        if self.layout.delimiter is not None:
            cells = _split(body, self.layout.delimiter)
            if self.layout.column >= len(cells):
                w.invalid(raw, line_no, f"no column {self.layout.column + 1} (delimiter "
                                        f"{self.layout.delimiter.decode()!r})")
                return
            cell = cells[self.layout.column]
        try:
            text = cell.decode("utf-8").strip().strip('"').strip()
        except UnicodeDecodeError:
            w.invalid(raw, line_no, "not UTF-8")
            return
        if not text:
            w.invalid(raw, line_no, "no number")
            return
        number = self.s.normaliser.parse(text)
        if number.kind is Kind.INVALID:
            digits = sum(ch.isdigit() for ch in text)
            why = "letters in the number" if any(ch.isalpha() for ch in text) else (
                "too short" if digits < 8 else "too long" if digits > 15 else "not a phone number")
            w.invalid(raw, line_no, why)
            return
        d = self.s.decide(number)
        if d.verdict is Verdict.ALLOW:
            w.keep(d)
            w.out.write(raw + b"\n")
        else:
            w.reject(raw, line_no, str(d.reason), d.detail)

    def keys_of(self, block: bytes) -> bytes | None:
        """The block reduced to the number cell of each line (LF endings), when a regex can do it exactly."""
        kb = block.replace(b"\r\n", b"\n") if b"\r" in block else block
        if self.field_re is None:
            return kb
        if b'"' in kb:
            return None
        if self.layout.column == 0:
            return re.sub(re.escape(self.layout.delimiter or b";") + rb"[^\n]*", b"", kb)
        cells, n = self.field_re.subn(rb"\1", kb)
        # A line with too few columns does not match and would stay whole: let the line path report it.
        return cells if n == kb.count(b"\n") else None

    def block(self, block: bytes, first_line: int) -> None:
        """Screen LF-terminated ``block`` whose first line is number ``first_line``."""
        s = self.s
        kb = self.keys_of(block) if s.fast else None
        nsn = national_block(kb) if kb is not None else None
        if nsn is None:
            lines = block.split(b"\n")
            lines.pop()
            if len(lines) > SUB_BLOCK_LINES and s.fast:
                for i in range(0, len(lines), SUB_BLOCK_LINES):
                    self.block(b"\n".join(lines[i : i + SUB_BLOCK_LINES]) + b"\n", first_line + i)
                return
            for i, raw in enumerate(lines):
                self.line(raw, first_line + i)
            return
        self.fast_block(block, nsn, first_line, kb is block)

    def fast_block(self, block: bytes, nsn: Any, first_line: int, plain: bool) -> None:
        """A block of plain national numbers: per-line work is C loops, Python touches only hot lines.

        ``plain``: the block is exactly 11 bytes a line (number + LF), so line ``i`` is ``block[11*i:11*i+10]``
        and the kept output is the block minus the rejected lines' slices.
        """
        s, w = self.s, self.w
        base = s.base
        assert base is not None
        k = len(nsn)
        if base.verdict is not Verdict.ALLOW:
            self.base_blocks(block, nsn, first_line)
            return
        hot_sel = list(map(s.hot.__contains__, nsn))
        hot_idx = list(compress(range(k), hot_sel))
        if not hot_idx:
            w.out.write(block)
            w.keep(base, k)
            return
        hot_nsn = list(map(nsn.__getitem__, hot_idx))
        by_nsn = s.classify(BitMap(hot_nsn))
        hot_codes = list(map(by_nsn.__getitem__, hot_nsn))
        allowed = s.allowed_codes
        w.keep(base, k - len(hot_idx))
        rejected: dict[int, list[int]] = {}
        for i, code in zip(hot_idx, hot_codes, strict=True):
            if code in allowed:
                w.keep(s.decisions[code])
            else:
                rejected.setdefault(code, []).append(i)
        if not rejected:
            w.out.write(block)
            return
        if plain:
            out = w.out
            pos = 0
            for i in sorted(i for idx in rejected.values() for i in idx):
                out.write(block[pos : 11 * i])
                pos = 11 * i + 11
            out.write(block[pos:])
            lines: list[bytes] | None = None
        else:
            lines = block.split(b"\n")
            keep = [True] * k
            for idx in rejected.values():
                for i in idx:
                    keep[i] = False
            w.out.write(b"\n".join(compress(lines, keep)) + b"\n")
        crlf = b"\r" in block
        for code, idx in rejected.items():
            picked = [block[11 * i : 11 * i + 10] for i in idx] if lines is None else [lines[i] for i in idx]
            numbers = map(first_line.__add__, idx)
            if code == -1:
                for raw, line_no in zip(picked, numbers, strict=False):
                    self.line(raw, line_no)  # reported as invalid, with its reason
            else:
                w.reject_many(picked, numbers, s.decisions[code], crlf)

    def base_blocks(self, block: bytes, nsn: Any, first_line: int) -> None:
        """The base decision blocks (say, outside hours): every line is decided by codes, most are rejected."""
        s, w = self.s, self.w
        by_nsn = s.classify(BitMap(nsn) & s.hot)
        codes = list(map(by_nsn.get, nsn, repeat(s.base_code)))
        lines = block.split(b"\n")
        groups: dict[int, list[int]] = {}
        for i, code in enumerate(codes):
            groups.setdefault(code, []).append(i)
        allowed = s.allowed_codes
        if any(code in allowed for code in groups):
            w.out.write(b"\n".join(compress(lines, map(allowed.__contains__, codes))) + b"\n")
        crlf = b"\r" in block
        for code, idx in groups.items():
            if code in allowed:
                w.keep(s.decisions[code], len(idx))
            elif code == -1:
                for i in idx:
                    self.line(lines[i], first_line + i)
            else:
                w.reject_many([lines[i] for i in idx], map(first_line.__add__, idx), s.decisions[code], crlf)


def scrub_stream(src: IO[bytes], out: IO[bytes], rejects: IO[bytes], screener: Screener, *,
                 fmt: str = "auto", delimiter: str | None = None, column: str | None = None,
                 progress: Any = None, block_bytes: int = BLOCK_BYTES) -> tuple[Summary, Layout]:
    """Screen ``src`` into ``out`` and ``rejects``; memory stays a few blocks whatever the size."""
    started = time.perf_counter()
    summary = Summary()
    head = src.read(65536)
    if head.startswith(BOM):
        summary.notes.append("byte order mark (BOM) at the start: kept in the outputs, ignored for parsing")
        out.write(BOM)
        rejects.write(BOM)
        head = head[len(BOM):]
    layout = detect_layout(head, screener.normaliser, fmt=fmt, delimiter=delimiter, column=column)
    if b"\r\n" in head:
        summary.notes.append("CRLF line endings: kept as they are")
    writer = _Writer(out, rejects, layout, summary)
    scrubber = _BlockScrubber(screener, layout, writer)
    line_no = 1
    if layout.header:
        nl = head.find(b"\n")
        header_line, head = (head, b"") if nl < 0 else (head[:nl], head[nl + 1 :])
        writer.header(header_line, layout)
        line_no = 2
    else:
        writer.header(None, layout)
    for block in stream_blocks(src, head, block_bytes):
        n = block.count(b"\n")
        scrubber.block(block, line_no)
        line_no += n
        summary.lines += n
        if progress is not None:
            progress.update(len(block))
    summary.seconds = time.perf_counter() - started
    summary.engine_calls = screener.engine_calls
    return summary, layout


# -- command line ---------------------------------------------------------------------------------

def planning_engine(engine: Engine) -> Engine:
    """The same engine and rules with every campaign's hours and holiday switches off (``--ignore-hours``)."""
    campaigns = {n: replace(c, check_hours=False, check_holidays=False) for n, c in engine.campaigns.items()}
    return Engine(campaigns, engine.pack, engine.settings)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="call file: CSV, Bloctel (Telephone;Identifiant) or one number a line;"
                                               " - for stdin")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="cleaned file (same layout as IN)")
    p.add_argument("--campaign", required=True, help="campaign name from the config")
    p.add_argument("--at", help="ISO-8601 date and time with offset for the hours rules (default: now)")
    p.add_argument("--ignore-hours", action="store_true",
                   help="planning: do not apply the hours and public-holiday rules (the date still sets the regime)")
    p.add_argument("--caller-id", help="presented number (default: the campaign's caller_id)")
    p.add_argument("--rejects", metavar="FILE", help="removed lines with reason, detail and line number "
                                                    "(default: OUT.rejects.csv)")
    p.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON to FILE")
    p.add_argument("--format", dest="fmt", choices=("auto", "lines", "csv", "bloctel"), default="auto")
    p.add_argument("--delimiter", help="CSV delimiter (default: detected); 'tab' for a tab")
    p.add_argument("--column", help="number column: 1-based index or header name (default: detected)")


def run(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError, load_runtime_config, parse_at
    from gateway.service import Gateway

    at = parse_at(args.at) or datetime.now(UTC)
    config = load_runtime_config(args)
    if args.campaign not in config.campaigns:
        raise UsageError(f"no campaign named {args.campaign!r} (defined: {', '.join(sorted(config.campaigns))})")
    src_path = None if args.input == "-" else Path(args.input)
    if src_path is not None and not src_path.is_file():
        raise UsageError(f"{args.input}: no such file")
    out_path = Path(args.output)
    rejects_path = Path(args.rejects) if args.rejects else out_path.with_name(out_path.name + ".rejects.csv")
    if src_path is not None and src_path.resolve() in (out_path.resolve(), rejects_path.resolve()):
        raise UsageError("the output would overwrite the input: choose another -o")
    gw = Gateway(config)
    result = gw.holder.load_all()
    for name, err in result.failed.items():
        print(f"warning: list {name}: {err}", file=sys.stderr)
    engine = planning_engine(gw.engine) if args.ignore_hours else gw.engine
    screener = Screener(engine, gw.holder.current, gw.normaliser, args.campaign, at, args.caller_id)
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(total=src_path.stat().st_size if src_path else None, unit="B", unit_scale=True,
                        file=sys.stderr, desc="scrub")
    src: IO[bytes] = src_path.open("rb") if src_path else sys.stdin.buffer
    try:
        with src, _AtomicFile(out_path) as out, _AtomicFile(rejects_path) as rejects:
            summary, layout = scrub_stream(src, out, rejects, screener, fmt=args.fmt, delimiter=args.delimiter,
                                           column=args.column, progress=progress)
    except ValueError as e:
        raise UsageError(str(e)) from None
    finally:
        if progress is not None:
            progress.close()
    report = {
        "input": args.input, "output": str(out_path), "rejects": str(rejects_path), "campaign": args.campaign,
        "at": at.isoformat(), "ignore_hours": args.ignore_hours, "layout": layout.describe(),
        "lists": {n: gw.holder.current.version(n) for n in screener.list_names}, **summary.as_json(),
    }
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(_summary_text(report))
    return 0


class _AtomicFile:
    """Write to a temporary file and rename on success: a failed run never leaves half a cleaned file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".part")

    def __enter__(self) -> IO[bytes]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f: IO[bytes] = io.BufferedWriter(io.FileIO(self.tmp, "w"), buffer_size=1 << 20)
        return self.f

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.f.close()
        if exc_type is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _summary_text(report: Mapping[str, Any]) -> str:
    lines = [
        f"scrub {report['input']} -> {report['output']} (campaign {report['campaign']}, at {report['at']}"
        f"{', hours ignored' if report['ignore_hours'] else ''}; {report['layout']['format']})",
        f"  {report['lines']} lines: {report['kept']} kept, {report['removed']} removed"
        f" in {report['seconds']} s ({report['lines_per_second'] or 0} lines/s)",
    ]
    for reason, n in report["by_reason"].items():
        lines.append(f"  removed {reason}: {n}")
    for reason, n in report["kept_by_reason"].items():
        lines.append(f"  kept {reason}: {n}")
    if report["would_block"]:
        lines.append(f"  kept but would block in enforce mode (monitor campaign): {report['would_block']}")
    inv = report["invalid"]
    if inv["count"]:
        shown = ", ".join(f"{x['line']} ({x['detail']})" for x in inv["lines"][:10])
        more = f", … {inv['count'] - 10} more" if inv["count"] > 10 else ""
        lines.append(f"  invalid lines: {shown}{more}")
    lines.extend(f"  note: {n}" for n in report["notes"])
    lines.append(f"  rejects: {report['rejects']}")
    return "\n".join(lines)

