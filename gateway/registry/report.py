"""What a load saw: lines, numbers, bad lines (with their line numbers and a masked quote), the file's as-of date.

Shared by every loader (plain lists, national registry files, delta files): a bad line never stops a load;
it is counted and reported, and the file is refused only when too many of its lines are bad.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from gateway.numbers import mask_digits
from gateway.registry.model import RegistryError

if TYPE_CHECKING:  # a type only: consent_csv reads its rows into a LoadReport
    from gateway.registry.consent_csv import ConsentFile
    from gateway.registry.relationship_csv import RelationshipFile

MAX_BAD_SAMPLES = 50

# "# as_of: 2026-03-01" (or as-of, as of; ':' or '='): the date a list was extracted, read from a comment line.
AS_OF = re.compile(rb"^#\s*as[_ -]of\s*[:=]\s*(\d{4}-\d{2}-\d{2})", re.I)


@dataclass(slots=True)
class LoadReport:
    """What a load saw; ``bad`` keeps the first few bad lines for the operator."""

    source: str
    format: str = ""
    lines: int = 0
    accepted: int = 0
    bad_count: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)
    quotes: dict[int, str] = field(default_factory=dict)  # line number -> the line as quote() shows it
    as_of: date | None = None
    consents: ConsentFile | None = None  # a consent-csv file's dates, withdrawals and rows
    relationships: RelationshipFile | None = None  # a relationship-csv file's dates

    def comment(self, line: bytes) -> None:
        """A ``#`` line of a list file: its as-of date, when it gives one and none was read before."""
        if self.as_of is None and (m := AS_OF.match(line)):
            try:
                self.as_of = date.fromisoformat(m.group(1).decode())
            except ValueError:  # "# as_of: 2026-13-45": this list's failure, not the process's
                raise RegistryError(f"{self.source}: bad as-of date in {quote(line)} (expected YYYY-MM-DD, a real "
                                    f"date)") from None

    def add_bad(self, line_no: int, why: str, raw: bytes = b"") -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_BAD_SAMPLES:
            self.bad.append((line_no, why))
            if raw:
                self.quotes[line_no] = quote(raw)

    def samples(self, n: int = 5) -> str:
        """The first ``n`` bad lines, each with its number, why, and the line itself (digits masked)."""
        return "; ".join(f"line {line}: {why}" + (f" {q}" if (q := self.quotes.get(line)) else "")
                         for line, why in self.bad[:n])

    def refuse_if_too_bad(self, what: str, max_bad_share: float, min_bad_lines: int) -> None:
        """Refuse the file when too many of its lines are bad: more than ``max_bad_share`` of them, and at
        least ``min_bad_lines`` (one bad line in eight is noise, not a broken export) unless none is good."""
        if not self.lines or self.bad_share <= max_bad_share:
            return
        if self.bad_count < min_bad_lines and self.accepted:
            return
        raise RegistryError(
            f"{what}: {self.bad_count} of {self.lines} lines are not numbers ({self.bad_share:.1%} > max_bad_share "
            f"{max_bad_share:.1%}, from {min_bad_lines} bad lines); first: {self.samples()}")

    @property
    def bad_share(self) -> float:
        return self.bad_count / self.lines if self.lines else 0.0

    def summary(self) -> str:
        text = f"{self.source}: {self.lines} lines, {self.accepted} numbers, {self.bad_count} bad"
        if self.bad:
            text += "; " + self.samples()
            if self.bad_count > 5:
                text += f"; … {self.bad_count - 5} more"
        return text


def quote(raw: bytes, limit: int = 40) -> str:
    """A bad line as the operator can find it in the file: its first characters, digit runs masked (a bad line
    is often a number with a typo, and numbers are personal data)."""
    text = raw.decode("utf-8", "replace")
    return repr(mask_digits(text[:limit] + ("…" if len(text) > limit else "")))


