"""Checks a new version of a list must pass before it replaces the one in service.

A half-finished copy or download is the most common way a list goes wrong, and it looks valid line by
line: every line it has is a number. Two things give it away:

- it drops many of the numbers the version in service holds, in a list that blocks (``GUARDED``); national
  lists change by well under 1 % a day: more than the list's ``max_shrink`` and the new version is refused,
  the old one kept, until an operator accepts it (``dnc-gateway registry accept LIST``) or raises ``max_shrink``;
- it ends in the middle of a line: no final newline, and its last line is not a number.

Pure functions on values: the holder decides what to keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyroaring import FrozenBitMap64

from gateway.registry.model import ListKind, RegistryError, RegistryList
from gateway.registry.report import LoadReport

# Lists whose numbers block a call: one that loses numbers lets calls through. A consent or customer list that
# loses some blocks more calls, never fewer: no guard there unless its max_shrink is set.
GUARDED = frozenset({ListKind.OPPOSITION, ListKind.INTERNAL_DNC, ListKind.LITIGATORS, ListKind.BLOCKED_PREFIXES})
DEFAULT_MAX_SHRINK = 0.05  # national lists change by well under 1 % a day

# Refused for shrinking only from this many numbers dropped: a hand-kept list of a few numbers is edited on
# purpose (the same floor as MIN_BAD_LINES for bad lines).
MIN_DROPPED = 10


@dataclass(frozen=True, slots=True)
class Shrink:
    """A new version that drops too many of the numbers in service: held back, not served."""

    name: str
    in_service: int  # numbers (or entries) of the version in service
    offered: int  # of the new version
    dropped: int  # numbers of the version in service that the new one lacks
    max_shrink: float
    version: str  # the new version's, the one ``registry accept`` takes

    @property
    def share(self) -> float:
        return self.dropped / self.in_service if self.in_service else 0.0

    def message(self) -> str:
        return (f"{self.name}: the new version drops {self.dropped} of the {self.in_service} numbers in service "
                f"({self.share:.1%} > max_shrink {self.max_shrink:.1%}; {self.offered} numbers offered): refused as "
                f"a likely truncated copy, the previous version keeps serving; accept it with `dnc-gateway "
                f"registry accept {self.name}` or raise [lists.{self.name}] max_shrink")

    def as_json(self) -> dict[str, object]:
        return {"in_service": self.in_service, "offered": self.offered, "dropped": self.dropped,
                "share": round(self.share, 6), "max_shrink": self.max_shrink, "version": self.version}


def dropped(old: RegistryList, new: RegistryList) -> int:
    """How many numbers of ``old`` ``new`` lacks (prefix lists: how many fewer entries it has)."""
    if isinstance(old.members, FrozenBitMap64) and isinstance(new.members, FrozenBitMap64):
        return len(old.members - new.members)
    return max(0, old.meta.count - new.meta.count)


def limit_of(max_shrink: float | None, new: RegistryList) -> float | None:
    """The list's ``max_shrink`` when set; unset: ``DEFAULT_MAX_SHRINK`` for a list that blocks, no guard else."""
    if max_shrink is not None:
        return max_shrink
    return DEFAULT_MAX_SHRINK if new.meta.kind in GUARDED else None


def shrink(old: RegistryList | None, new: RegistryList, max_shrink: float | None) -> Shrink | None:
    """The refusal of ``new`` when it drops more than ``max_shrink`` of ``old``'s numbers, else None."""
    max_shrink = limit_of(max_shrink, new)
    if old is None or max_shrink is None or old.meta.count == 0 or old.meta.sha256 == new.meta.sha256:
        return None
    lost = dropped(old, new)
    if lost <= max_shrink * old.meta.count or lost < MIN_DROPPED:
        return None
    return Shrink(new.meta.name, old.meta.count, new.meta.count, lost, max_shrink, new.meta.version)


def shrink_from_count(served: int | None, new: RegistryList, max_shrink: float | None) -> Shrink | None:
    """The guard at start, against the count last in service (no members to compare): the refusal of ``new``
    when it has more than ``max_shrink`` fewer numbers, else None."""
    max_shrink = limit_of(max_shrink, new)
    if served is None or served <= 0 or max_shrink is None:
        return None
    lost = served - new.meta.count
    if lost <= max_shrink * served or lost < MIN_DROPPED:
        return None
    return Shrink(new.meta.name, served, new.meta.count, lost, max_shrink, new.meta.version)


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return b""
        f.seek(-1, 2)
        return f.read(1)


def _line_count(path: Path) -> int:
    """Lines of a file that does not end with a newline (its last line counted)."""
    n = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return n + 1


def refuse_if_cut(what: str, path: Path, report: LoadReport, max_samples: int) -> None:
    """Refuse a text file that ends in the middle of a line: no final newline, and its last line was bad
    (a number cut short). A whole last line without its newline is an editor's habit, not a cut."""
    if _last_byte(path) in (b"", b"\n"):
        return
    if report.bad_count == 0:
        return
    last = _line_count(path)
    if report.bad_count > max_samples or any(line == last for line, _why in report.bad):
        raise RegistryError(f"{what}: the file ends in the middle of line {last} (no final newline, and the "
                            f"line is not a number): a copy or download cut short; the previous version keeps "
                            f"serving")
