"""Dated delta files: additions and removals applied on top of a full list at every reload.

A full Bloctel extract arrives monthly; opt-outs and consents arrive every day. A delta
file says what changed since, one number a line::

    # as_of: 2026-11-21
    +0612345678      added
    -0698765432      removed

A list points to its deltas with ``deltas = "bloctel.d/*.delta"`` in ``[lists.NAME]`` (a glob,
relative to the data directory). On load, deltas dated *after* the base list's as-of date
are applied in date order (undated ones last, by name); older ones are already part of the
base and are skipped, so dropping in a new full extract retires them with no clean-up.
``dnc-gateway registry diff A B --list`` writes exactly this format.

A list in a national format (``ftc-dnc``, ``dncl``, ``tps``, ``ctps``) takes its registry's change files as
they come, in the same glob: a record with an add or delete flag column (``212,5551234,A``, ``D,416,1234567``;
see :func:`national.change_record`) counts as ``+`` or ``-``, and its numbers are read by that country's plan
(``+2125551234`` adds a US number, ``-07860338653`` removes a UK one). Name them so that they sort by date, or
put an ``# as_of:`` line at the top: a change file has no date of its own otherwise.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from pyroaring import BitMap64, FrozenBitMap64

from gateway.numbers import Normaliser
from gateway.registry import national, snapshot
from gateway.registry.loaders import _lines, load_list
from gateway.registry.model import MIN_BAD_LINES, ListSpec, RegistryError, RegistryList
from gateway.registry.report import LoadReport

__all__ = ["Delta", "DeltaReport", "apply_deltas", "find_deltas", "load_with_deltas", "read_delta", "write_delta"]


@dataclass(frozen=True, slots=True)
class Delta:
    path: Path
    as_of: date | None
    added: FrozenBitMap64
    removed: FrozenBitMap64
    report: LoadReport


@dataclass(slots=True)
class DeltaReport:
    applied: list[Delta] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, why)

    def summary(self) -> str:
        parts = [f"{d.path.name}: +{len(d.added)} -{len(d.removed)}" for d in self.applied]
        parts += [f"{p.name}: skipped ({why})" for p, why in self.skipped]
        return "; ".join(parts) or "no delta files"


def _normalised(normaliser: Normaliser) -> Callable[[bytes], int | None]:
    def number(body: bytes) -> int | None:
        return normaliser.parse(body.decode("utf-8")).key or None

    return number


def read_delta(path: Path, normaliser: Normaliser, max_bad_share: float = 0.05,
               min_bad_lines: int = MIN_BAD_LINES, fmt: str = "text") -> Delta:
    """Parse one delta file; a bad line is reported with its number and skipped, too many fail the file.

    ``fmt`` is the format of the list the file applies to: a national one reads numbers by its country's plan
    and takes its registry's change records besides ``+``/``-`` lines.
    """
    layout = national.LAYOUTS.get(fmt)
    number = layout.number if layout is not None else _normalised(normaliser)
    report = LoadReport(str(path), "delta")
    added, removed = BitMap64(), BitMap64()
    for line_no, raw in enumerate(_lines(path), 1):
        s = raw.strip()
        if not s:
            continue
        if s.startswith(b"#"):
            folded = s.replace(b" ", b"").lower()
            if report.as_of is None and folded.startswith((b"#as_of", b"#as-of", b"#asof")):
                text = folded.split(b":", 1)[-1].split(b"=", 1)[-1].decode("ascii", "replace")
                try:
                    report.as_of = date.fromisoformat(text)
                except ValueError:
                    raise RegistryError(f"{path}:{line_no}: as_of {text!r} is not a date (YYYY-MM-DD)") from None
            continue
        report.lines += 1
        sign, body = s[:1], s[1:].strip()
        if sign not in (b"+", b"-"):
            record = national.change_record(s, number) if layout is not None else None
            if record is None:
                why = "expected +NUMBER (addition) or -NUMBER (removal)"
                report.add_bad(line_no, why + (" or a change record with an A/D flag" if layout else ""), s)
                continue
            (added if record[0] else removed).add(record[1])
            report.accepted += 1
            continue
        try:
            key = number(body)
        except UnicodeDecodeError:
            report.add_bad(line_no, "not UTF-8")
            continue
        if key is None:
            report.add_bad(line_no, "not a phone number", s)
            continue
        (added if sign == b"+" else removed).add(key)
        report.accepted += 1
    report.refuse_if_too_bad(str(path), max_bad_share, min_bad_lines)
    both = added & removed
    if both:  # a number added and removed in the same file: the removal wins (the safer reading)
        added -= both
    return Delta(path, report.as_of, FrozenBitMap64(added), FrozenBitMap64(removed), report)


def find_deltas(pattern: str | Path) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(str(pattern)) if Path(p).is_file())


def apply_deltas(lst: RegistryList, deltas: list[Delta]) -> tuple[RegistryList, DeltaReport]:
    """``lst`` with the deltas dated after its as-of date applied in date order; a new version and digest."""
    report = DeltaReport()
    base_as_of = lst.meta.as_of
    todo = []
    for d in deltas:
        if d.as_of is not None and base_as_of is not None and d.as_of <= base_as_of:
            report.skipped.append((d.path, f"dated {d.as_of}, not after the list's {base_as_of}"))
        else:
            todo.append(d)
    if not todo:
        return lst, report
    if not isinstance(lst.members, FrozenBitMap64):
        raise RegistryError(f"{lst.name}: delta files apply to number lists, not to {lst.kind} lists")
    todo.sort(key=lambda d: (d.as_of is None, d.as_of or date.min, d.path.name))
    members = BitMap64(lst.members)
    as_of = base_as_of
    for d in todo:
        members |= d.added
        members -= d.removed
        if d.as_of is not None and (as_of is None or d.as_of > as_of):
            as_of = d.as_of
        report.applied.append(d)
    members.run_optimize()
    frozen = FrozenBitMap64(members)
    meta = replace(lst.meta, as_of=as_of, count=len(frozen), sha256=snapshot.digest(frozen),
                   source=f"{lst.meta.source} + {len(todo)} delta file{'s' if len(todo) > 1 else ''}")
    return RegistryList(meta, frozen), report


def load_with_deltas(spec: ListSpec, normaliser: Normaliser) -> tuple[RegistryList, LoadReport]:
    """What ``RegistryHolder.load_list`` does, plus the list's delta files (``deltas`` key) when it has some.

    Bad lines of a delta file are added to the load report, prefixed with the file's name.
    """
    if spec.path is None:
        raise RegistryError(f"{spec.name}: no local path (url lists are fetched by the poller)")
    lst, report = load_list(spec.path, name=spec.name, kind=spec.kind, normaliser=normaliser, fmt=spec.format,
                            as_of=spec.as_of, max_age_days=spec.max_age_days, max_bad_share=spec.max_bad_share,
                            min_bad_lines=spec.min_bad_lines)
    if not spec.deltas:
        return lst, report
    # Change files read numbers the way the list does: by its national format, or its country's (a snapshot).
    fmt = report.format if report.format in national.LAYOUTS else national.COUNTRY_FORMATS.get(spec.country or "", "")
    deltas = [read_delta(p, normaliser, spec.max_bad_share, spec.min_bad_lines, fmt or "text")
              for p in find_deltas(spec.deltas)]
    lst, dreport = apply_deltas(lst, deltas)
    for d in dreport.applied:
        for line_no, why in d.report.bad:
            report.add_bad(line_no, f"{d.path.name}: {why}")
    return lst, report


def write_delta(path_or_file: Path | None, added: BitMap64 | FrozenBitMap64, removed: BitMap64 | FrozenBitMap64,
                as_of: date | None) -> list[str]:
    """The lines of a delta file (E.164 numbers), written to ``path_or_file`` when given."""
    lines = [f"# as_of: {as_of.isoformat()}"] if as_of else []
    lines += [f"++{k}" for k in added]  # sign, then the E.164 number with its own '+'
    lines += [f"-+{k}" for k in removed]
    if path_or_file is not None:
        path_or_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines
