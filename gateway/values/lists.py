"""The configured lists (``[lists.NAME]``): what a list means to a call, its format, where it comes from and how
fresh it must be. A leaf module: the config builds these, the registry loads the lists they name."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar


class ListKind(enum.StrEnum):
    OPPOSITION = "opposition"
    CONSENT = "consent"
    CUSTOMERS = "customers"
    INQUIRIES = "inquiries"  # a customers list of inquiries: the shorter relationship window (US 3 months)
    INTERNAL_DNC = "internal_dnc"
    LITIGATORS = "litigators"
    B2B = "b2b"
    BLOCKED_PREFIXES = "blocked_prefixes"


class ListFormat(enum.StrEnum):
    AUTO = "auto"  # recognised from the file's first lines
    TEXT = "text"
    BLOCTEL_CSV = "bloctel-csv"
    PREFIXES = "prefixes"
    SNAPSHOT = "snapshot"
    CONSENT_CSV = "consent-csv"  # consents with their proof (registry/consent_csv.py)
    RELATIONSHIP_CSV = "relationship-csv"  # dated customers or inquiries (registry/relationship_csv.py)
    # National registry downloads, read as published (gateway/registry/national.py; docs/list-formats.md).
    FTC_DNC = "ftc-dnc"  # US National Do Not Call Registry: "AAA,NNNNNNN" (area code, number) a line
    DNCL = "dncl"  # Canada's National DNCL (CRTC): the same layout as the FTC's
    TPS = "tps"  # UK Telephone Preference Service: one national number a line, "0207 3787244" / "02073787244"
    CTPS = "ctps"  # UK Corporate TPS: the TPS layout


# A file is refused for its share of bad lines only from this many of them: one bad line in eight of a tiny
# file is noise, not a broken export.
MIN_BAD_LINES = 10


@dataclass(frozen=True, slots=True)
class ListSpec:
    """A configured list (``[lists.NAME]``): where it comes from and how fresh it must be."""

    # One line per key for the configuration reference (gateway/configdoc.py); a key missing here is
    # listed without one.
    KEY_DOCS: ClassVar[Mapping[str, str]] = {
        "kind": "Required: what the list means to a call.",
        "path": "The list file (`path` or `url`, or both: `path` keeps the last verified download).",
        "format": "The file's format; `auto` recognises it from its first lines.",
        "as_of": "The list's date; default: read from the file (`# as_of: YYYY-MM-DD`) or the snapshot header.",
        "max_age_days": "Past this age the list is stale (`registry_stale`); not set: never stale.",
        "max_bad_share": "Refuse the file when more of its lines than this share are not numbers ...",
        "min_bad_lines": "... and at least this many (a share of a tiny file is noise).",
        "max_shrink": ("Refuse a new version that drops more than this share of the numbers in service (not set: "
                       "0.05 for the lists that block, no limit for consent and customers lists)."),
        "url": "`https://` or `file:///` address: fetched, checked against its digest, polled.",
        "sha256": "The download's SHA-256 digest (else a `URL.sha256` sidecar file).",
        "poll_seconds": "0: fetched once at start; else polled every N seconds.",
        "fetch_timeout": "Seconds one download of `url` may take in all (connect and transfer).",
        "deltas": "A glob of dated delta or change files, applied on load in date order.",
        "country": "ISO code of a national list: it applies to that country's numbers only; not set: to every call.",
    }

    name: str
    kind: ListKind
    path: Path | None
    format: ListFormat = ListFormat.AUTO
    as_of: date | None = None
    max_age_days: int | None = None
    max_bad_share: float = 0.05  # refuse the file when more of its lines than this are bad ...
    min_bad_lines: int = MIN_BAD_LINES  # ... and at least this many (unless none is good)
    # Refuse a new version that drops more than this share of the numbers of the version in service (a
    # truncated copy or download): the old one keeps serving until `dnc-gateway registry accept` or a larger value.
    # None: 0.05 for the lists that block calls, no limit for consent and customer lists (registry/guard.py).
    max_shrink: float | None = None
    url: str = ""
    sha256: str = ""
    poll_seconds: float = 0.0
    fetch_timeout: float = 600.0  # seconds one download of ``url`` may take in all (connect and transfer)
    deltas: str = ""  # glob of dated delta files (+NUMBER / -NUMBER lines) applied on load, "" for none
    # ISO 3166 code of a national list (US National DNC, CA DNCL, GB TPS/CTPS, FR Bloctel): it applies only to
    # calls to that country, and its staleness blocks only those. None: the list applies to every call.
    country: str | None = None
