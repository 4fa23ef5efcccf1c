"""scrub: every kept line is allowed by the engine, every removed line is blocked for the reason given."""

from __future__ import annotations

import io
import random
import tracemalloc
from datetime import datetime

import pytest

from gateway.policy.decision import Verdict
from gateway.scrub import Screener, planning_engine, scrub_stream
from gateway.service import Gateway
from tests.scrub.helpers import ARMISTICE, BLOCTEL_ERA, EVENING, LEGAL, expected, numbers, reject_rows, screen


@pytest.mark.parametrize("campaign", ["prospect", "legacy", "survey"])
@pytest.mark.parametrize("at", [LEGAL, EVENING, ARMISTICE, BLOCTEL_ERA], ids=["legal", "evening", "holiday", "2026-03"])
def test_round_trip_against_the_engine(gateway: Gateway, campaign: str, at: datetime) -> None:
    lines = numbers(3000, seed=hash((campaign, at.isoformat())) & 0xFFFF)
    data = ("\n".join(lines) + "\n").encode()
    summary, out, rejects, layout = screen(gateway, campaign, at, data)
    assert layout.name == "lines"
    kept = out.decode().splitlines()
    rows = reject_rows(rejects)
    assert rows[0] == ["number", "dnc_reason", "dnc_detail", "dnc_line"]
    assert len(kept) + len(rows) - 1 == len(lines) == summary["lines"]
    assert summary["kept"] == len(kept) and summary["removed"] == len(rows) - 1
    for text in kept:
        assert expected(gateway, campaign, at, text).verdict is Verdict.ALLOW, text
    seen = set()
    for number, reason, detail, line_no in rows[1:]:
        n = int(line_no)
        assert lines[n - 1] == number
        seen.add(n)
        d = expected(gateway, campaign, at, number)
        if reason == "invalid_number" and not number.strip():
            continue
        assert d.verdict is Verdict.BLOCK and str(d.reason) == reason, (number, reason, d)
        if reason != "invalid_number":
            assert d.detail == detail
    # kept lines keep their order
    assert kept == [t for i, t in enumerate(lines, 1) if i not in seen]


def test_ignore_hours_drops_only_the_hours_and_holiday_rules(gateway: Gateway) -> None:
    lines = numbers(2000, seed=7)
    data = ("\n".join(lines) + "\n").encode()
    s = Screener(planning_engine(gateway.engine), gateway.holder.current, gateway.normaliser, "legacy", ARMISTICE)
    out, rej = io.BytesIO(), io.BytesIO()
    summary, _ = scrub_stream(io.BytesIO(data), out, rej, s)
    reasons = summary.by_reason
    assert "public_holiday" not in reasons and "outside_hours" not in reasons
    assert reasons["opposition_list"] > 0
    plain = screen(gateway, "legacy", ARMISTICE, data)[0]
    assert plain["by_reason"]["public_holiday"] > 0
    assert summary.removed < plain["removed"]


def test_fast_and_line_paths_agree(gateway: Gateway) -> None:
    plain = [f"0{random.Random(3).randrange(10**8, 10**9)}" for _ in range(10)]
    lines = numbers(20000, seed=11) + plain
    data = ("\n".join(x for x in lines if x.strip()) + "\n").encode()
    fast = screen(gateway, "legacy", LEGAL, data)
    s = Screener(gateway.engine, gateway.holder.current, gateway.normaliser, "legacy", LEGAL)
    s.fast = False
    out, rej = io.BytesIO(), io.BytesIO()
    scrub_stream(io.BytesIO(data), out, rej, s)
    assert fast[1] == out.getvalue()
    assert sorted(fast[2].splitlines()) == sorted(rej.getvalue().splitlines())


def test_malformed_lines_are_reported_and_do_not_stop_the_run(gateway: Gateway) -> None:
    data = (b"\xef\xbb\xbf0612000001\r\n0612345678\r\nabc\r\n\r\n06123\r\n0612;345678\r\n\xe9\xe9\xff\r\n"
            b"+33 6 12 34 56 79\r\n0612345680")
    summary, out, rejects, _ = screen(gateway, "legacy", LEGAL, data)
    assert out == b"\xef\xbb\xbf0612345678\r\n+33 6 12 34 56 79\r\n0612345680\n"
    invalid = {x["line"]: x["detail"] for x in summary["invalid"]["lines"]}
    assert invalid == {3: "letters in the number", 4: "empty line", 5: "too short", 6: "not a phone number",
                       7: "not UTF-8"}
    assert summary["by_reason"] == {"invalid_number": 5, "opposition_list": 1}
    assert any("BOM" in n for n in summary["notes"]) and any("CRLF" in n for n in summary["notes"])
    assert rejects.startswith(b"\xef\xbb\xbfnumber;dnc_reason;dnc_detail;dnc_line\n")
    assert b"\xe9\xe9\xff;invalid_number;not UTF-8;7\r\n" in rejects  # the original bytes, untouched


def test_csv_columns_are_kept_byte_for_byte(gateway: Gateway) -> None:
    rows = [b"id;Nom;Num\xc3\xa9ro de t\xc3\xa9l\xc3\xa9phone;ville", b'1;"Dupont; Jean";0612000001;Paris',
            b"2;Martin;0612345678;Lyon ", b'3;"Durand";"06 12 34 56 99";N\xc3\xaemes', b"4;short", b"5;X;0612000200;Y"]
    data = b"\r\n".join(rows) + b"\r\n"
    summary, out, rejects, layout = screen(gateway, "legacy", LEGAL, data)
    assert (layout.delimiter, layout.column, layout.header) == (b";", 2, True)
    assert out == b"\r\n".join([rows[0], rows[2], rows[3]]) + b"\r\n"
    got = reject_rows(rejects)
    assert got[0][-3:] == ["dnc_reason", "dnc_detail", "dnc_line"]
    assert [(r[-3], r[-1]) for r in got[1:]] == [("opposition_list", "2"), ("invalid_number", "5"),
                                                   ("internal_dnc", "6")]
    assert summary["invalid"]["lines"] == [{"line": 5, "detail": "no column 3 (delimiter ';')"}]


def test_csv_fast_path_reports_short_rows(gateway: Gateway) -> None:
    rows = [f"{i},0{600_000_000 + i * 7919},x".encode() for i in range(5000)]
    rows[1234] = b"0612345678"  # no delimiter at all: not "the number", a row without column 2
    rows[2345] = b"a,0612000001,b"
    summary, out, _, layout = screen(gateway, "legacy", LEGAL, b"\n".join(rows) + b"\n")
    assert (layout.delimiter, layout.column) == (b",", 1)
    assert summary["invalid"]["lines"] == [{"line": 1235, "detail": "no column 2 (delimiter ',')"}]
    assert summary["by_reason"] == {"invalid_number": 1, "opposition_list": 1}
    assert out.count(b"\n") == 4998


def test_column_and_delimiter_can_be_given(gateway: Gateway) -> None:
    data = b"a,0612000001,x\nb,0612345678,y\n"
    _, out, _, layout = screen(gateway, "legacy", LEGAL, data, delimiter=",", column="2")
    assert (layout.delimiter, layout.column, layout.header) == (b",", 1, False)
    assert out == b"b,0612345678,y\n"
    with pytest.raises(ValueError, match="no such column"):
        screen(gateway, "legacy", LEGAL, b"name;phone\nx;0612345678\n", column="mobile")


def test_bloctel_format_in_and_out(gateway: Gateway) -> None:
    data = b"Telephone;Identifiant\n0612000001;A1\n0612345678;A2\n0612000002;A3\n0612345679;A4\n"
    summary, out, rejects, layout = screen(gateway, "legacy", LEGAL, data)
    assert layout.bloctel and layout.header
    assert out == b"Telephone;Identifiant\n0612345678;A2\n0612345679;A4\n"
    assert rejects.splitlines()[0] == b"Telephone;Identifiant;dnc_reason;dnc_detail;dnc_line"
    assert rejects.splitlines()[1] == b"0612000001;A1;opposition_list;on the opposition list 'bloctel';2"
    assert summary["by_reason"] == {"opposition_list": 2}


def test_memory_stays_bounded(gateway: Gateway) -> None:
    rng = random.Random(5)
    lines = [f"0{rng.randrange(100_000_000, 1_000_000_000)}" for _ in range(200_000)] + numbers(2000)
    data = ("\n".join(lines) + "\n").encode()
    s = Screener(gateway.engine, gateway.holder.current, gateway.normaliser, "legacy", LEGAL)

    class Sink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            return len(b)  # type: ignore[arg-type]

    src = io.BytesIO(data)
    tracemalloc.start()
    try:
        summary, _ = scrub_stream(src, Sink(), Sink(), s, block_bytes=256 << 10)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.lines == 202_000
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB for a {len(data) / 2**20:.1f} MiB file"
