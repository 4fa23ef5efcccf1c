"""National do-not-call files as their operators publish them: the US National DNC Registry (FTC), Canada's
National DNCL (CRTC) and the UK's TPS / CTPS.

Every number gets the key the normaliser gives its E.164 form (``+1 212 555 1234`` -> ``12125551234``,
``+44 20 7378 7244`` -> ``442073787244``), whatever the home country: a national file is read by its own
country's numbering plan, not by the gateway's.

What the operators document, and what is not verified (docs/list-formats.md says the same):

* FTC National DNC Registry (``ftc-dnc``): the full list as a "flat text file" holds one area code and
  telephone number per line, separated by a comma (``212,5551234``), one file per area code, state or the whole
  registry, zipped. Sources: https://www.ftc.gov/opa/2003/08/tmkraccessinfo.htm (archived by UNT),
  http://www.dontphoneme.com/howtoguides/downloadingdnc.html. The change list is documented only as "a
  comma-delimited text file with several data items per record": its columns are *unverified*, so a change
  record is read tolerantly (an add/delete flag in any column, the number in one or two columns, any other
  column such as a date ignored; see :func:`change_record`).
* CRTC National DNCL (``dncl``): "one three-digit Canadian area code and seven-digit telephone number per line,
  with a linefeed at the end of each line" (``416,1234567``), one file per area code or one for all of Canada.
  Source: https://crtc.gc.ca/eng/INFO_SHT/t1028.htm ("Telemarketer subscription rates and file formats").
  Its change files are not documented there (*unverified*): read like the FTC's.
* TPS / CTPS (``tps``, ``ctps``): the full download is one number a line in national format, either "with
  spaces" (a 5-character dialling code, left-justified, then the 7-character remainder, right-justified:
  ``0207 3787244``, ``01635 506160``) or "without spaces" (the number left-justified in 12 characters,
  ``02073787244 ``), CR LF line ends; the CTPS file has the same layout. Source: TPS "Technical Specifications
  for File Formats", http://corporate.mpsonline.org.uk/shared/technical_desc.asp?context=CTPS. The change
  files' layout was not found (*unverified*): read like the FTC's change records.

Tolerance: a number may also come with its country code (``12125551234``, ``+1 212 555 1234``, ``+44 20…``,
``0044 20…``), with or without a leading 0 (UK), with or without the comma (NANP), with spaces, dashes or
brackets; quotes and CR LF are accepted; a header line without digits in the first two lines is skipped.
NANP numbers are checked for the plan's shape (area code and exchange code start with 2-9), UK numbers for
a national significant number of 9 or 10 digits starting with 1, 2, 3, 5, 7, 8 or 9; neither is checked against
the numbers actually assigned (a listed number the normaliser finds invalid is never dialled past the
``invalid_number`` rule, so keeping it costs only its few bytes).

Speed: the US list has about 250 million numbers. A block of lines of one fixed layout (``AAA,NNNNNNN`` or
``AAANNNNNNN``, or the TPS layouts) is checked and converted with whole-block byte operations: strided slices
put the E.164 digits of every line side by side, and one ``json.loads`` turns the lot into integers in C.
Only blocks holding anything else go line by line.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import phonenumbers
from pyroaring import BitMap64, FrozenBitMap64

from gateway.registry.report import LoadReport

__all__ = [
    "COUNTRY_FORMATS", "LAYOUTS", "Layout", "change_record", "detect", "nanp_number", "parse_national", "uk_number",
]

NANP_BASE = 10_000_000_000  # key of +1 NPA NXX XXXX: 1 * 10^10 + the ten national digits
SUB_BLOCK_LINES = 4096
FLUSH_KEYS = 1 << 20

_DIGITS = b"0123456789"
_SEPARATORS = re.compile(rb"[,;\t|]")
_SPELLING = b" -()./\t"  # what a spreadsheet or a person puts between digits
_NANP_N = b"23456789"  # first digit of an area code and of an exchange code
_UK_FIRST = b"1235789"  # first digit of a UK national significant number (04 and 06 are not used)

def nanp_number(s: bytes) -> int | None:
    """The key of one NANP number written ``2125551234``, ``1-212-555-1234``, ``+1 (212) 555-1234`` or
    ``0012125551234``; None when it is not one."""
    s = s.strip().strip(b'"').translate(None, _SPELLING)
    if s.startswith(b"+"):
        s = s[1:]
        if not s.startswith(b"1"):
            return None
    elif s.startswith(b"001"):
        s = s[2:]
    if len(s) == 11 and s[0] == 49:  # '1': the country code
        s = s[1:]
    if len(s) != 10 or not s.isdigit() or s[0] not in _NANP_N or s[3] not in _NANP_N:
        return None
    return NANP_BASE + int(s)


def nanp_line(s: bytes) -> int | None:
    """One record of an FTC or DNCL full list: ``AAA,NNNNNNN`` (area code, number), or a whole number in the
    first column; further columns are ignored."""
    fields = _SEPARATORS.split(s)
    first = fields[0].strip().strip(b'"')
    if len(fields) > 1 and len(first) == 3:
        return nanp_number(first + fields[1])
    return nanp_number(first)


def uk_number(s: bytes) -> int | None:
    """The key of one UK number written ``02073787244``, ``0207 3787244``, ``2073787244``, ``+44 20 7378 7244``,
    ``+44 (0)20…`` or ``00442073787244``; None when it is not one."""
    s = s.strip().strip(b'"').translate(None, _SPELLING)
    if s.startswith(b"+44"):
        nsn = s[3:]
    elif s.startswith(b"0044"):
        nsn = s[4:]
    elif s.startswith(b"0"):
        nsn = s[1:]
    elif s.startswith(b"44") and len(s) in (11, 12):  # no NSN starts with 4: this is the country code
        nsn = s[2:]
    else:
        nsn = s
    if nsn.startswith(b"0") and s[:1] in (b"+", b"4"):  # +44 (0)20 …: the trunk 0 kept after the country code
        nsn = nsn[1:]
    if not 9 <= len(nsn) <= 10 or not nsn.isdigit() or nsn[0] not in _UK_FIRST:
        return None
    return int(b"44" + nsn)


def uk_line(s: bytes) -> int | None:
    """One record of a TPS or CTPS full list: the number (its spaces are spelling); further columns ignored."""
    return uk_number(_SEPARATORS.split(s)[0])


def _nanp_block(kb: bytes) -> list[int] | None:
    """Keys of a block whose every line is ``AAA,NNNNNNN`` or every line ``AAANNNNNNN``, else None."""
    comma = kb[3:4] == b","
    width = 12 if comma else 11
    k = len(kb) // width
    if not k or len(kb) != width * k or kb.count(b"\n") != k or kb[width - 1 :: width] != b"\n" * k:
        return None
    if comma:
        if kb.count(b",") != k or kb[3::12] != b"," * k or kb.translate(None, b"0123456789,\n"):
            return None
    elif kb.translate(None, b"0123456789\n"):
        return None
    digits = (0, 1, 2, 4, 5, 6, 7, 8, 9, 10) if comma else tuple(range(10))
    if kb[0::width].translate(None, _NANP_N) or kb[digits[3] :: width].translate(None, _NANP_N):
        return None
    # "[" then "1AAANNNNNNN," a line, the last comma made "]": a JSON array of the keys.
    out = bytearray(12 * k + 1)
    out[0] = 91  # '['
    out[1::12] = b"1" * k
    for i, col in enumerate(digits):
        out[2 + i :: 12] = kb[col::width]
    out[12::12] = b"," * k
    out[-1] = 93  # ']'
    keys: list[int] = json.loads(out)
    return keys


def _uk_block(kb: bytes) -> list[int] | None:
    """Keys of a block whose every line is a 0 + 10-digit UK number, spaces anywhere (both TPS layouts)."""
    if b" " in kb:
        kb = kb.replace(b" ", b"")
    k = len(kb) // 12
    if not k or len(kb) != 12 * k or kb.count(b"\n") != k or kb[11::12] != b"\n" * k:
        return None
    if kb.translate(None, b"0123456789\n") or kb[0::12] != b"0" * k or kb[1::12].translate(None, _UK_FIRST):
        return None
    out = bytearray(13 * k + 1)
    out[0] = 91
    out[1::13] = b"4" * k
    out[2::13] = b"4" * k
    for i in range(10):
        out[3 + i :: 13] = kb[1 + i :: 12]
    out[13::13] = b"," * k
    out[-1] = 93
    keys: list[int] = json.loads(out)
    return keys


@dataclass(frozen=True, slots=True)
class Layout:
    """How one national format is read: a record of its full list, a number alone (change records), a block."""

    name: str
    what: str  # "NANP" or "UK", for the bad-line message
    line: Callable[[bytes], int | None]
    number: Callable[[bytes], int | None]
    block: Callable[[bytes], list[int] | None]


_NANP = ("NANP", nanp_line, nanp_number, _nanp_block)
_UK = ("UK", uk_line, uk_number, _uk_block)
LAYOUTS: dict[str, Layout] = {
    "ftc-dnc": Layout("ftc-dnc", *_NANP),
    "dncl": Layout("dncl", *_NANP),
    "tps": Layout("tps", *_UK),
    "ctps": Layout("ctps", *_UK),
}
# The national format of a country's lists: how the change files of a list of that country (a snapshot of it,
# say) read their numbers.
COUNTRY_FORMATS = {"US": "ftc-dnc", "CA": "dncl", "GB": "tps"}


def _slow_lines(lines: list[bytes], first_line: int, layout: Layout, report: LoadReport, keys: array[int]) -> None:
    for i, raw in enumerate(lines):
        s = raw.strip()
        if not s:
            continue
        if s[0] == 35:  # '#'
            report.comment(s)
            continue
        line_no = first_line + i
        if line_no <= 2 and s.translate(None, _DIGITS) == s:
            continue  # a header ("AreaCode,PhoneNumber"): no digit at all
        report.lines += 1
        key = layout.line(s)
        if key is None:
            report.add_bad(line_no, f"not a {layout.what} number", s)
            continue
        keys.append(key)
        report.accepted += 1


def parse_national(blocks: Iterable[bytes], layout: Layout, report: LoadReport) -> FrozenBitMap64:
    """Every number of a national file (LF-terminated blocks of whole lines) as a frozen, run-optimised bitmap."""
    acc = BitMap64()
    slow: array[int] = array("Q")
    line_no = 1
    for block in blocks:
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        n_lines = block.count(b"\n")
        keys = layout.block(block)
        if keys is not None:
            acc |= BitMap64(keys)
            report.lines += n_lines
            report.accepted += n_lines
        else:
            lines = block.split(b"\n")[:-1]
            for i in range(0, len(lines), SUB_BLOCK_LINES):
                sub = lines[i : i + SUB_BLOCK_LINES]
                keys = layout.block(b"\n".join(sub) + b"\n")
                if keys is not None:
                    acc |= BitMap64(keys)
                    report.lines += len(sub)
                    report.accepted += len(sub)
                else:
                    _slow_lines(sub, line_no + i, layout, report, slow)
            if len(slow) >= FLUSH_KEYS:
                acc |= BitMap64(slow)
                slow = array("Q")
        line_no += n_lines
    acc |= BitMap64(slow)
    acc.run_optimize()
    return FrozenBitMap64(acc)


_ADD = frozenset({b"A", b"ADD", b"ADDED", b"ADDITION", b"INSERT", b"NEW"})
_DELETE = frozenset({b"D", b"DEL", b"DELETE", b"DELETED", b"DELETION", b"REMOVE", b"REMOVED"})


def change_record(s: bytes, number: Callable[[bytes], int | None]) -> tuple[bool, int] | None:
    """``(added, key)`` of one change-list record, None when the line is not one.

    The published change lists' columns are not verified (module docstring): a record is taken when exactly one
    column is an add or delete flag (``A``/``ADD``/``ADDED``/…, ``D``/``DEL``/``DELETE``/…, any case) and a
    number is in one column or, NANP style, in an area-code column and the next; other columns (dates, times,
    state codes) are ignored. ``A2125551234`` (the flag glued in front) is read too.
    """
    fields = [f.strip().strip(b'"').upper() for f in _SEPARATORS.split(s)]
    if len(fields) == 1:
        fields = fields[0].split()
    if len(fields) == 1 and fields[0][:1] in (b"A", b"D") and (key := number(fields[0][1:])) is not None:
        return fields[0][:1] == b"A", key
    flags = [f for f in fields if f in _ADD or f in _DELETE]
    if len(flags) != 1:
        return None
    rest = [f for f in fields if f != flags[0]]
    for i, f in enumerate(rest):
        if len(f) == 3 and f.isdigit() and i + 1 < len(rest) and (key := number(f + rest[i + 1])) is not None:
            return flags[0] in _ADD, key
        if (key := number(f)) is not None:
            return flags[0] in _ADD, key
    return None


_NANP_COMMA = re.compile(rb"^[2-9]\d\d,[2-9]\d{6}$")
_NANP_BARE = re.compile(rb"^[2-9]\d\d[2-9]\d{6}$")
_UK_NATIONAL = re.compile(rb"^0[1235789]\d{8,9}$")


def detect(lines: list[bytes], home_country: str) -> str | None:
    """The national format that the first data lines of a file are unambiguously written in, else None.

    ``AAA,NNNNNNN`` is the FTC's and the CRTC's layout (told apart by the first area code's country, which only
    labels the load: both read alike). Ten bare digits are NANP numbers only for a US or Canadian gateway, since
    elsewhere they may be a national number without its trunk 0 (``2079460000`` is London). Numbers of 0 and
    ten digits are UK numbers (TPS): a French list's have 0 and nine. Most lines must agree, so that a bad line
    near the top does not change how the whole file is read.
    """

    def most(pattern: re.Pattern[bytes], sample: list[bytes]) -> list[bytes]:
        hits = [s for s in sample if pattern.match(s)]
        return hits if 2 * len(hits) > len(sample) else []

    if not lines:
        return None
    if hits := most(_NANP_COMMA, lines):
        return _nanp_name(hits[0].replace(b",", b""))
    if home_country in ("US", "CA") and (hits := most(_NANP_BARE, lines)):
        return _nanp_name(hits[0])
    uk = most(_UK_NATIONAL, [s.replace(b" ", b"") for s in lines])
    if uk and 2 * sum(len(s) == 11 for s in uk) > len(lines):
        return "tps"
    return None


def _nanp_name(digits: bytes) -> str:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse("+1" + digits.decode()))
    except phonenumbers.NumberParseException:  # pragma: no cover - ten digits always parse
        region = None
    return "dncl" if region == "CA" else "ftc-dnc"
