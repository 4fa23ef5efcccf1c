"""Registry values: named lists of numbers as immutable, versioned snapshots.

A list is either a roaring bitmap of E.164 keys (opposition, consent, customers,
internal DNC, litigators, B2B) or a sorted set of key intervals (blocked
prefixes): a prefix such as ``+1900`` covers 10^10 keys, which a bitmap would
have to materialise container by container, so ranges stay ranges.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from pyroaring import FrozenBitMap64

# The list specs the config builds live below it (gateway/values/lists.py); re-exported under their old name.
from gateway.values.lists import MIN_BAD_LINES as MIN_BAD_LINES
from gateway.values.lists import ListFormat as ListFormat
from gateway.values.lists import ListKind as ListKind
from gateway.values.lists import ListSpec as ListSpec


class RegistryError(Exception):
    """A list could not be loaded; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class ListMeta:
    name: str
    kind: ListKind
    source: str
    as_of: date | None
    count: int
    sha256: str  # of the canonical payload: equal lists have equal digests
    max_age_days: int | None = None
    bad_lines: int = 0

    @property
    def version(self) -> str:
        """A short, stable version string for audit records and ``check --json``."""
        return f"{self.as_of.isoformat() if self.as_of else 'undated'}:{self.sha256[:12]}"

    def age_days(self, today: date) -> int | None:
        return None if self.as_of is None else (today - self.as_of).days


class KeyRanges:
    """Disjoint, sorted, half-open intervals of E.164 keys with O(log n) membership."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()) -> None:
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(intervals):
            if hi <= lo:
                continue
            if merged and lo <= merged[-1][1]:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        self._starts = array("Q", (lo for lo, _ in merged))
        self._ends = array("Q", (hi for _, hi in merged))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        i = bisect.bisect_right(self._starts, key) - 1
        return i >= 0 and key < self._ends[i]

    def __len__(self) -> int:
        return len(self._starts)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends, strict=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyRanges) and list(self) == list(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def cardinality(self) -> int:
        return sum(hi - lo for lo, hi in self)


Members = FrozenBitMap64 | KeyRanges


@dataclass(frozen=True, slots=True)
class RegistryList:
    meta: ListMeta
    members: Members

    def __contains__(self, key: int) -> bool:
        return key in self.members

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def kind(self) -> ListKind:
        return self.meta.kind

    def with_meta(self, **changes: object) -> RegistryList:
        return RegistryList(replace(self.meta, **changes), self.members)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Registries:
    """One consistent set of lists: the policy reads a single snapshot per decision."""

    lists: Mapping[str, RegistryList] = field(default_factory=dict)
    # Per consent list, the collection of each number's newest consent in force: a day, or an instant with its
    # offset; a member without one is undated (the campaign's undated_consent decides). From the list files
    # (consent-csv) and the side store's entries. Per customers or inquiries list likewise, the day of each
    # number's latest purchase or inquiry (relationship-csv, entries with --date; undated_relationship).
    consent_dates: Mapping[str, Mapping[int, date | datetime]] = field(default_factory=dict)
    # Configured kind of every list, including one that failed to load: a missing list must still
    # be recognised as, say, the campaign's opposition list, so that its absence blocks.
    kinds: Mapping[str, ListKind] = field(default_factory=dict)
    # Per number, the latest withdrawal of consent recorded in a list file or the side store: a consent
    # collected before it no longer counts, on any list (issue 13).
    withdrawals: Mapping[int, date | datetime] = field(default_factory=dict)
    # Country of each national list (ListSpec.country); a list absent here applies to every call.
    countries: Mapping[str, str] = field(default_factory=dict)

    def kind_of(self, name: str) -> ListKind | None:
        lst = self.lists.get(name)
        return lst.kind if lst is not None else self.kinds.get(name)

    def country_of(self, name: str) -> str | None:
        return self.countries.get(name)

    def get(self, name: str) -> RegistryList | None:
        return self.lists.get(name)

    def version(self, name: str) -> str:
        lst = self.lists.get(name)
        return lst.meta.version if lst is not None else "missing"

    def consent_date(self, name: str, key: int) -> date | datetime | None:
        dates = self.consent_dates.get(name)
        return None if dates is None else dates.get(key)

    def replaced(self, lst: RegistryList) -> Registries:
        lists = dict(self.lists)
        lists[lst.name] = lst
        kinds = dict(self.kinds)
        kinds[lst.name] = lst.kind
        return Registries(lists, self.consent_dates, kinds, self.withdrawals, self.countries)
