from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.replay.plaincsv import parse_time, read
from gateway.replay.sources import InputError


def test_positional_columns_and_time_formats() -> None:
    text = ("2026-11-24T10:30:00+01:00,0612000001,prospect,0162000000\n"
            "1795418477.5,0612000002,legacy,anonymous\n"
            ",0612000003,,\n")
    trace = read(text, "c.csv")
    assert [(c.number, c.campaign, c.caller_id) for c in trace.calls] == [
        ("0612000001", "prospect", "0162000000"), ("0612000002", "legacy", ""), ("0612000003", "", "")]
    assert trace.calls[0].at == datetime(2026, 11, 24, 9, 30, tzinfo=UTC).timestamp()
    assert trace.calls[1].at == 1795418477.5 and trace.calls[2].at is None


def test_header_picks_columns_by_name_and_semicolons() -> None:
    text = "id;Caller ID;Campaign;Dialled;At;extra\n7;0162000000;prospect;0612000001;2026-11-24 10:30:00;z\n"
    trace = read(text, "c.csv")
    c = trace.calls[0]
    assert (c.number, c.campaign, c.caller_id, c.origin) == ("0612000001", "prospect", "0162000000", "line 2")
    assert c.at == datetime(2026, 11, 24, 10, 30, tzinfo=UTC).timestamp()  # naive: UTC


def test_bad_lines_are_skipped_with_their_line_number() -> None:
    trace = read("time,number\nyesterday,0612000001\n2026-11-24T10:30:00Z,0612000002\n", "c.csv")
    assert [c.number for c in trace.calls] == ["0612000002"]
    assert trace.warnings[0].startswith("c.csv:2: time 'yesterday'")


@pytest.mark.parametrize(("text", "message"), [
    ("\n\n", "no call"),
    ("when,who\nsoon,later\n", "no readable call"),
    ("time,campaign\n1,x\n", "no number column"),
])
def test_unusable_files(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read(text, "c.csv")


def test_parse_time() -> None:
    assert parse_time("") is None
    assert parse_time("0") == 0.0
    with pytest.raises(ValueError):
        parse_time("soon")
