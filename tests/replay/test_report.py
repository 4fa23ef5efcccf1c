from __future__ import annotations

import csv
import io
import json

from gateway.replay.report import percentile, render, summarise
from gateway.replay.runner import Result
from gateway.replay.sources import Call, Trace

RESULTS = [
    Result(1, Call("0612000001", "legacy", "0162000000", 1795418477.0), "BLOCK", "opposition_list", True, "id1",
           0.002),
    Result(2, Call("0612000009", "prospect", "0162000000"), "ALLOW", "", False, "id2", 0.001),
    Result(3, Call("0612000200", "survey"), "ALLOW", "internal_dnc", True, "id3", 0.004),
    Result(4, Call("0612000010", "prospect"), error="session not closed within 5s", error_kind="timeout"),
]
TRACE = Trace(tuple(r.call for r in RESULTS), "pcap", {"frames": 10})


def test_percentiles_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([], 50) == 0.0 and percentile([3.0], 99) == 3.0


def test_summary() -> None:
    s = summarise(RESULTS)
    assert (s.total, s.answered, s.would_block) == (4, 3, 2)
    assert s.by_verdict == {"ALLOW": 2, "BLOCK": 1}
    assert s.by_reason == {"internal_dnc": 1, "none": 1, "opposition_list": 1}
    assert s.errors == {"timeout": 1}
    assert s.latency_ms["p50"] == 2.0 and s.latency_ms["max"] == 4.0


def test_json_masks_numbers_unless_asked() -> None:
    report = json.loads(render("json", RESULTS, TRACE, "gw:4573"))
    assert report["total"] == 4 and report["by_verdict"]["BLOCK"] == 1
    assert [b["number"] for b in report["blocked"]] == ["0612••••01", "0612••••00"]
    assert report["blocked"][0]["at"] == "2026-11-23T07:21:17.000+00:00"
    assert report["failed"][0]["error"].startswith("session not closed")
    shown = json.loads(render("json", RESULTS, TRACE, "gw:4573", show_numbers=True))
    assert shown["blocked"][0]["number"] == "0612000001"


def test_text_and_csv() -> None:
    text = render("text", RESULTS, TRACE, "gw:4573")
    assert "replayed 4 calls from a pcap trace through gw:4573: 3 answered" in text
    assert "internal_dnc (monitor)" in text and "protocol errors: timeout 1" in text
    assert "0612000001" not in text
    rows = list(csv.DictReader(io.StringIO(render("csv", RESULTS, TRACE, "gw:4573"))))
    assert [r["verdict"] for r in rows] == ["BLOCK", "ALLOW", "ALLOW", ""]
    assert rows[2]["would_block"] == "1" and rows[3]["error"]
