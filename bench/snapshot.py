"""Snapshot benchmark (issue 2): load time and memory of a 50M-number registry snapshot.

Run: ``.venv/bin/python bench/snapshot.py`` (50M numbers) or ``--quick`` (5M). The snapshot is written once,
then read back the way the gateway reads it at start and on reload: header check, SHA-256 of the payload,
deserialisation. Baseline in the same run: the same numbers read from a plain text list by the text loader.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from decision import malloc_in_use, registry_keys

from gateway.numbers import Normaliser
from gateway.registry import snapshot
from gateway.registry.loaders import bitmap_of, load_list
from gateway.registry.model import ListKind, ListMeta, RegistryList


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=50_000_000)
    ap.add_argument("--quick", action="store_true", help="5M numbers")
    ap.add_argument("--text", action="store_true", help="also time the text loader on the same numbers (slow)")
    args = ap.parse_args()
    if args.quick:
        args.size = 5_000_000
    print(f"# snapshot benchmark: {args.size:,} random French numbers, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} cores, {date.today()}")
    tmp = Path(tempfile.mkdtemp(prefix="dnc-snap-"))
    t0 = time.perf_counter()
    keys = registry_keys(args.size)
    members = bitmap_of(keys)
    build = time.perf_counter() - t0
    meta = ListMeta("bloctel", ListKind.OPPOSITION, "bench", date.today(), len(members), snapshot.digest(members))
    path = tmp / "bloctel.snapshot"
    snapshot.write(RegistryList(meta, members), path)
    size = path.stat().st_size
    count = len(members)
    text = tmp / "bloctel.txt"
    if args.text:
        with text.open("w") as f:
            for k in keys:
                f.write(f"0{str(k)[2:]}\n")
    del keys, members
    gc.collect()

    reads = []
    for _ in range(3):
        base = malloc_in_use()
        t0 = time.perf_counter()
        lst = snapshot.read(path)
        reads.append(time.perf_counter() - t0)
        mem = malloc_in_use() - base
        del lst
        gc.collect()
    rows = [("snapshot read (verify SHA-256 + deserialise)", min(reads), mem)]
    if args.text:
        base = malloc_in_use()
        t0 = time.perf_counter()
        _loaded, _ = load_list(text, name="bloctel", kind=ListKind.OPPOSITION, normaliser=Normaliser("FR"))
        rows.append(("text list load (baseline)", time.perf_counter() - t0, malloc_in_use() - base))
    print()
    print(f"| {'load':48} | {'seconds':>8} | {'memory MB':>9} | {'B/number':>8} |")
    print(f"|{'-' * 50}|{'-' * 10}|{'-' * 11}|{'-' * 10}|")
    for label, secs, m in rows:
        print(f"| {label:48} | {secs:>8.3f} | {m / 1e6:>9.1f} | {m / count:>8.2f} |")
    print()
    print(f"{count:,} distinct numbers; built in {build:.1f}s; snapshot file {size / 1e6:.1f} MB "
          f"({size / count:.2f} B/number); targets: load ≤ 1 s, ≤ 3 B/number in memory")


if __name__ == "__main__":
    main()
