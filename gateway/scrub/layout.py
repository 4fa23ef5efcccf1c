"""The shape of a call file to scrub: where the number is on a line (delimiter, column, header, Bloctel)."""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from gateway.numbers import Normaliser

BOM = b"\xef\xbb\xbf"
HEADER_NAMES = ("telephone", "phone", "numero", "tel", "number", "mobile", "portable", "msisdn", "gsm", "fixe",
                "contact", "num")
DELIMITERS = ";,\t|"


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


def split_cells(line: bytes, delimiter: bytes) -> list[bytes]:
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
    rows = [[c.decode("utf-8", "replace").strip().strip('"') for c in split_cells(ln, d)] for ln in lines]
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


