"""bench/pdd.py works: a short run of the post-dial delay bench against a real Asterisk (no timing asserted).

Skipped unless an Asterisk binary (DNC_ASTERISK or asterisk on PATH), sipp and dumpcap are there and this user
may capture on ``lo`` (root, or dumpcap with its capabilities).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.pbx import ROOT

ASTERISK = os.environ.get("DNC_ASTERISK") or shutil.which("asterisk")
DUMPCAP = shutil.which("dumpcap")


def _can_capture() -> bool:
    if DUMPCAP is None:
        return False
    out = subprocess.run([DUMPCAP, "-D"], capture_output=True, text=True, timeout=30)
    return out.returncode == 0 and "lo" in out.stdout


pytestmark = pytest.mark.skipif(
    not (ASTERISK and shutil.which("sipp") and _can_capture()),
    reason="needs a real Asterisk (DNC_ASTERISK), sipp, and dumpcap allowed to capture on lo")


def test_the_post_dial_delay_bench_measures_every_call_of_every_variant(tmp_path: Path) -> None:
    assert ASTERISK is not None
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pdd.py"), "--asterisk", ASTERISK, "--rates", "10", "--rounds", "1",
         "--seconds", "1", "--json", str(tmp_path / "pdd.json"), "--keep", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    res = json.loads((tmp_path / "pdd.json").read_text())
    assert res["asterisk"].startswith("Asterisk ")
    rows = {r["variant"]: r for r in res["rows"]}
    assert set(rows) == {"a", "b", "c", "d"}
    for v, r in rows.items():
        # Every call reached the carrier and was timed (none of the bench's numbers is listed).
        assert (r["rate"], r["calls"], r["measured"], r["failed"]) == (10, 10, 10, 0), v
        assert 0 < r["p50_ms"] <= r["p99_ms"]
        # The AGI variants were timed on their FastAGI connections too: every span has a figure.
        assert (set(r["spans"]) == set()) if v == "a" else len(r["spans"]) == 7
    # Gateway c decided and audited each of its calls (the warm-up's 10 and the measured 10), all allowed.
    with contextlib.closing(sqlite3.connect(tmp_path / "work" / "gateway" / "audit.db")) as db:
        assert db.execute("SELECT verdict, count(*) FROM audit GROUP BY verdict").fetchall() == [("ALLOW", 20)]
