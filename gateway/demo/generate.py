"""Generates the demo data on first run: a 1M-number synthetic opposition list and small sample lists.

Nothing big lives in git: the numbers come from a seeded generator, so every
machine gets the same demo, and the well-known sample numbers below behave as
the README and docs/index.md say.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
from array import array
from datetime import date, timedelta
from pathlib import Path

from gateway.registry import snapshot
from gateway.registry.loaders import bitmap_of
from gateway.registry.model import ListKind, ListMeta, RegistryList

log = logging.getLogger(__name__)

DEMO_SIZE = 1_000_000
RESTAMP_AFTER_DAYS = 20  # keep the demo lists fresh (their max age is 30 days)

# Sample numbers the README and docs/index.md use.
ON_BLOCTEL = [f"06120000{i:02d}" for i in range(1, 6)]
CONSENTED = ["0612000009", *[f"06120000{i:02d}" for i in range(10, 51)], "0692000009", "0590000009"]
CUSTOMERS = [f"06120001{i:02d}" for i in range(0, 21)]
COMPANY_DNC = ["0612000002", "0612000200", "0612000201"]
LITIGATORS = ["0612000300"]
PREMIUM = ["0899", "0897", "+1900"]
PRO_NUMBERS = ["0162000500", "0162000501"]


def demo_dir() -> Path:
    env = os.environ.get("DNC_GATEWAY_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dnc-gateway" / "demo"


def _text(path: Path, numbers: list[str], as_of: date) -> None:
    path.write_text(f"# as_of: {as_of.isoformat()}\n" + "\n".join(numbers) + "\n", encoding="utf-8")


def synthetic_keys(n: int, seed: int = 2016) -> array[int]:
    """``n`` distinct-enough random French mobile and fixed numbers as E.164 keys."""
    rng = random.Random(seed)
    keys: array[int] = array("Q")
    ranges = ((33_600_000_000, 33_800_000_000), (33_100_000_000, 33_600_000_000))
    for i in range(n):
        lo, hi = ranges[i % 5 == 0]
        keys.append(rng.randrange(lo, hi))
    return keys


def ensure_demo_data(root: Path, today: date | None = None, size: int = DEMO_SIZE) -> bool:
    """Create (or re-date) the demo lists; returns True when anything was written."""
    today = today or date.today()
    root.mkdir(parents=True, exist_ok=True)
    snap = root / "bloctel.snapshot"
    stale = True
    if snap.exists():
        try:
            header, _ = snapshot.read_header(snap)
            stale = (today - date.fromisoformat(header["as_of"])).days > RESTAMP_AFTER_DAYS
        except Exception:
            stale = True
    token = root / "admin-token"
    if not token.exists():
        token.write_text(secrets.token_urlsafe(24) + "\n")
        token.chmod(0o600)
    if not stale:
        return False
    log.info("demo: generating sample lists in %s (%d synthetic numbers)", root, size)
    samples = {33_000_000_000 + int(n[1:]) for n in CONSENTED + CUSTOMERS + COMPANY_DNC + LITIGATORS}
    keys = array("Q", (k for k in synthetic_keys(size) if k not in samples))
    keys.extend(33_000_000_000 + int(n[1:]) for n in ON_BLOCTEL)
    members = bitmap_of(keys)
    meta = ListMeta("bloctel", ListKind.OPPOSITION, "synthetic demo list", today - timedelta(days=2), len(members),
                    snapshot.digest(members))
    snapshot.write(RegistryList(meta, members), snap)
    _text(root / "consent.txt", CONSENTED, today - timedelta(days=1))
    _text(root / "customers.txt", CUSTOMERS, today)
    _text(root / "company-dnc.txt", COMPANY_DNC, today)
    _text(root / "litigators.txt", LITIGATORS, today)
    _text(root / "premium-prefixes.txt", PREMIUM, today)
    _text(root / "pro-numbers.txt", PRO_NUMBERS, today)
    return True
