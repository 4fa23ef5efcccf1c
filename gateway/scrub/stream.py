"""The streaming scrub: the call file read in blocks (never whole), kept lines out, removed lines to the rejects.

Also what a run reports: the :class:`Summary` and its text, and :class:`AtomicFile` (a failed run leaves no
half-written output).
"""

from __future__ import annotations

import io
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import compress, repeat
from pathlib import Path
from typing import IO, Any

from pyroaring import BitMap

from gateway.numbers import Kind, Number
from gateway.policy.decision import Decision, Reason, Verdict
from gateway.registry.loaders import national_block, stream_blocks
from gateway.scrub.layout import BOM, Layout, detect_layout, split_cells
from gateway.scrub.screener import Screener
from gateway.state.model import History

BLOCK_BYTES = 1 << 20
SUB_BLOCK_LINES = 2048
MAX_INVALID_LISTED = 1000  # the summary lists this many invalid lines; the rejects file has them all


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
    by_state_rule: Counter[str] = field(default_factory=Counter)  # removed by what the state store knows

    def as_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines, "kept": self.kept, "removed": self.removed, "would_block": self.would_block,
            "by_reason": dict(self.by_reason.most_common()), "kept_by_reason": dict(self.kept_by_reason.most_common()),
            "invalid": {"count": self.invalid_count, "lines": [{"line": n, "detail": d} for n, d in self.invalid],
                        "listed": len(self.invalid)},
            "notes": self.notes, "seconds": round(self.seconds, 3),
            "lines_per_second": round(self.lines / self.seconds) if self.seconds else None,
            "engine_calls": self.engine_calls,
            "by_state_rule": dict(self.by_state_rule.most_common()),
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
        parsed = self.parse(raw)
        found = self.s.histories([parsed.key]) if isinstance(parsed, Number) else {}
        self.decide_line(raw, line_no, parsed, found)

    def lines(self, lines: list[bytes], first_line: int) -> None:
        """Lines one by one, their histories read in one batch."""
        parsed = [self.parse(raw) for raw in lines]
        found = self.s.histories([p.key for p in parsed if isinstance(p, Number)])
        for i, (raw, p) in enumerate(zip(lines, parsed, strict=True)):
            self.decide_line(raw, first_line + i, p, found)

    def parse(self, raw: bytes) -> Number | str:
        """The line's number, or why it has none."""
        body = raw.removesuffix(b"\r")
        if not body.strip():
            return "empty line"
        cell = body
        if self.layout.delimiter is not None:
            cells = split_cells(body, self.layout.delimiter)
            if self.layout.column >= len(cells):
                return f"no column {self.layout.column + 1} (delimiter {self.layout.delimiter.decode()!r})"
            cell = cells[self.layout.column]
        try:
            text = cell.decode("utf-8").strip().strip('"').strip()
        except UnicodeDecodeError:
            return "not UTF-8"
        if not text:
            return "no number"
        number = self.s.normaliser.parse(text)
        if number.kind is Kind.INVALID:
            digits = sum(ch.isdigit() for ch in text)
            return "letters in the number" if any(ch.isalpha() for ch in text) else (
                "too short" if digits < 8 else "too long" if digits > 15 else "not a phone number")
        return number

    def decide_line(self, raw: bytes, line_no: int, parsed: Number | str, histories: Mapping[int, History]) -> None:
        w = self.w
        if isinstance(parsed, str):
            w.invalid(raw, line_no, parsed)
            return
        history = histories.get(parsed.key)
        d = self.s.decide(parsed) if history is None else self.s.with_history(parsed, history)
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
            self.lines(lines, first_line)
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
        known = s.nsn_histories(nsn)  # numbers the state store knows are decided one by one, with their history
        if base.verdict is not Verdict.ALLOW:
            self.base_blocks(block, nsn, first_line, known)
            return
        hot_sel = list(map(s.hot.__contains__, nsn))
        if known:
            hot_sel = [hot or n in known for hot, n in zip(hot_sel, nsn, strict=True)]
        hot_idx = list(compress(range(k), hot_sel))
        if not hot_idx:
            w.out.write(block)
            w.keep(base, k)
            return
        hot_nsn = list(map(nsn.__getitem__, hot_idx))
        by_nsn = self.classify(BitMap(hot_nsn), known)
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

    def classify(self, hot: BitMap, known: Mapping[int, History]) -> dict[int, int]:
        """Decision codes of ``hot`` national numbers: by signature, except those with a history."""
        s = self.s
        by_nsn = s.classify(hot - BitMap(known) if known else hot)
        for n, history in known.items():
            by_nsn[n] = s.code(s.with_history(s.number_of(n), history))
        return by_nsn

    def base_blocks(self, block: bytes, nsn: Any, first_line: int, known: Mapping[int, History]) -> None:
        """The base decision blocks (say, outside hours): every line is decided by codes, most are rejected."""
        s, w = self.s, self.w
        by_nsn = self.classify((BitMap(nsn) & s.hot) | BitMap(known), known)
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
    summary.by_state_rule = screener.state_removed
    return summary, layout



class AtomicFile:
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


def summary_text(report: Mapping[str, Any]) -> str:
    lines = [
        f"scrub {report['input']} -> {report['output']} (campaign {report['campaign']}, at {report['at']}"
        f"{', hours ignored' if report['ignore_hours'] else ''}; {report['layout']['format']})",
        f"  {report['lines']} lines: {report['kept']} kept, {report['removed']} removed"
        f" in {report['seconds']} s ({report['lines_per_second'] or 0} lines/s)",
    ]
    for reason, n in report["by_reason"].items():
        lines.append(f"  removed {reason}: {n}")
    state = report.get("state", "")
    if state:
        rules = report["by_state_rule"]
        lines.append(f"  state ({state}): " + (", ".join(f"{rule} removed {n}" for rule, n in rules.items())
                                              if rules else "no line removed by a recorded opt-out, refusal or "
                                                            "attempt"))
    for reason, n in report["kept_by_reason"].items():
        lines.append(f"  kept {reason}: {n}")
    if report["would_block"]:
        lines.append(f"  kept but would block in enforce mode (monitor campaign): {report['would_block']}")
    inv = report["invalid"]
    if inv["count"]:
        shown = ", ".join(f"line {x['line']} ({x['detail']})" for x in inv["lines"][:10])
        more = f", … {inv['count'] - 10} more" if inv["count"] > 10 else ""
        lines.append(f"  invalid lines: {shown}{more}")
    lines.extend(f"  note: {n}" for n in report["notes"])
    lines.append(f"  rejects: {report['rejects']}")
    return "\n".join(lines)

