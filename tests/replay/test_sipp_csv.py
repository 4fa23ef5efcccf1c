from __future__ import annotations

import pytest

from gateway.replay.sipp_csv import is_sipp_csv, read, write
from gateway.replay.sources import Call, InputError


def test_read_modes_comments_and_short_lines() -> None:
    text = "RANDOM,PRINTF=2\n# a comment\n0612000001;prospect;0162000000;\n0612000002;legacy\n\n;x;y\n0612000003\n"
    assert is_sipp_csv(text) and is_sipp_csv("USER\n") and not is_sipp_csv("time,number\n")
    trace = read(text, "f.csv")
    assert [(c.number, c.campaign, c.caller_id, c.at) for c in trace.calls] == [
        ("0612000001", "prospect", "0162000000", None), ("0612000002", "legacy", "", None),
        ("0612000003", "", "", None)]
    assert trace.calls[0].origin == "line 3"
    assert trace.warnings == ("f.csv:6: no number in field0: line skipped",)


def test_no_call_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no call line"):
        read("SEQUENTIAL\n\n", "f.csv")


def test_write_round_trip_and_unsafe_fields() -> None:
    calls = [Call("0612000001", "prospect", "0162000000"), Call("0612000002", "a;b", "", origin="frame 3")]
    text, warnings = write(calls)
    assert text == "SEQUENTIAL\n0612000001;prospect;0162000000\n0612000002;a_b;anonymous\n"
    assert warnings == ["frame 3: ';' or a line break in a field replaced by '_'"]
    back = read(text, "x")
    assert [(c.number, c.campaign, c.caller_id) for c in back.calls] == [
        ("0612000001", "prospect", "0162000000"), ("0612000002", "a_b", "")]


def test_optional_time_in_field3() -> None:
    trace = read("SEQUENTIAL\n0612000001;p;0162000000;2026-11-24T10:30:00+01:00\n0612000002;p;;1795418477\n", "f")
    assert [c.at for c in trace.calls] == [1795512600.0, 1795418477.0]
    with pytest.raises(InputError, match="f:2: time 'soon' in field3"):
        read("SEQUENTIAL\n0612000001;p;0162000000;soon\n", "f")
