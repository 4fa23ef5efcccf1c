from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.replay import plaincsv
from gateway.replay.plaincsv import TimeReader, parse_time, read
from gateway.replay.sources import Event, InputError


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


def test_a_time_that_cannot_be_read_is_an_error_with_its_line_number() -> None:
    with pytest.raises(InputError, match=r"^c\.csv:3: time 'yesterday' cannot be read"):
        read("time,number\n2026-11-24T10:30:00Z,0612000002\nyesterday,0612000001\n", "c.csv")


def test_times_with_an_offset_in_utc_or_in_the_given_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    text = ("time,number\n2026-11-24T10:30:00+01:00,0612000001\n2026-11-24T09:30:00Z,0612000002\n"
            "2026-11-24 10:30:00,0612000003\n2026-07-14T10:30:00,0612000004\n")
    at = [c.at for c in read(text, "c.csv", paris).calls]
    nov = datetime(2026, 11, 24, 9, 30, tzinfo=UTC).timestamp()
    assert at == [nov, nov, nov, datetime(2026, 7, 14, 8, 30, tzinfo=UTC).timestamp()]  # summer time: +02:00
    assert read(text, "c.csv").calls[2].at == datetime(2026, 11, 24, 10, 30, tzinfo=UTC).timestamp()  # default UTC


def test_event_column() -> None:
    text = "time,number,event\n1,0612000001,\n2,0612000001,refusal\n3,0612000002,OPTOUT\n"
    assert [c.event for c in read(text, "c.csv").calls] == [Event.CALL, Event.REFUSAL, Event.OPTOUT]
    with pytest.raises(InputError, match=r"c\.csv:2: event 'hung up'"):
        read("time,number,event\n1,0612000001,hung up\n", "c.csv")


@pytest.mark.parametrize(("text", "message"), [
    ("\n\n", "no call"),
    # A header with no name replay knows: the names it expected, not "time 'when'" nor "calls have no time".
    ("when,who\nsoon,later\n", r"c\.csv:1: header 'when', 'who' names no column replay reads: expected time \(or at"),
    ("time,number\n1,\n", "no readable call"),
    ("time,number\nsoon,0612000001\n", "c.csv:2: time 'soon'"),
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


def test_the_time_reader_reads_as_parse_time() -> None:
    paris = ZoneInfo("Europe/Paris")
    read_time = TimeReader(paris)
    for text in ["2026-11-16 10:30:05", " 2026-11-16 10:30:05 ", "2026-11-16T10:30:59", "2026-10-25 02:30:10",
                 "2026-03-29 03:00:01", "2026-11-16T10:30:05Z", "2026-11-16T10:30:05+01:00", "1795418477", ""]:
        assert read_time(text) == parse_time(text, paris), text
        assert read_time(text) == parse_time(text, paris), text  # the second time from the minute's memo
    for bad in ["2026-11-16 10:30:60", "2026-11-16 10:30:5x", "2026-11-16 10:30x05", "2026-11-16 10:61:00"]:
        with pytest.raises(ValueError):
            read_time(bad)


PLAIN = [
    "time,number,campaign,caller_id\n2026-11-16 10:30:00,0612000001,spring,0162000000\n"
    "2026-11-16 10:30:00,0612000002, spring ,anonymous\n2026-11-16 10:30:01,+33 6 12 00 00 03,,\n",
    "2026-11-16T10:30:00Z;0612000001;spring;0162000000\r\n1795418477;0612000002;autumn;\r\n",
    "time,number,campaign\n\n# a comment\n2026-11-16 10:30:00,0612000001,spring\n,0612000002\n1,,x\n",
    "time,number,campaign\n1,0612000001,spring,extra\n2,0612000002\n",
    'time,number,campaign\n1,"0612000001",spring\n2,0612000002,"a, b"\n',
    "number\n0612000001\n0612000002\n",
    "time\tnumber\tcampaign\n1\t0612000001\tspring\n",
    "time,number,campaign,event\n1,0612000001,spring,\n2,0612000001,spring,refusal\n",
]


@pytest.mark.parametrize("text", PLAIN)
def test_the_plain_paths_read_as_the_csv_module(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines split on the delimiter, and whole columns mapped, read what csv.reader and the line loop read."""
    dialect = csv.excel if "\t" not in text else csv.excel_tab
    lines = plaincsv._lines(text, dialect)
    assert list(plaincsv._rows(text, dialect, lines)) == list(csv.reader(io.StringIO(text), dialect))
    fast = read(text, "c.csv", ZoneInfo("Europe/Paris"))
    monkeypatch.setattr(plaincsv, "_lines", lambda text, dialect: None)  # csv.reader and the line loop
    slow = read(text, "c.csv", ZoneInfo("Europe/Paris"))
    assert fast == slow


def test_a_header_column_replay_does_not_know_is_named_with_the_expected_ones() -> None:
    """A dialler's export with "called_at" for the time: the calls read, and a warning says the column is not,
    naming the header names replay reads (an offline replay then says the calls have no time)."""
    trace = read("number,called_at,campaign\n0612000001,2026-11-24T10:30:00+01:00,legacy\n", "c.csv")
    assert [c.at for c in trace.calls] == [None]
    assert len(trace.warnings) == 1
    assert trace.warnings[0].startswith("c.csv:1: column 'called_at' not read: the header names replay reads are "
                                        "time (or at, timestamp, date, datetime); number (or dialled")


def test_a_time_that_cannot_be_read_is_explained_in_the_traces_zone() -> None:
    from zoneinfo import ZoneInfo

    with pytest.raises(InputError) as e:
        read("time,number\nsoon,2125550123\n", "c.csv", ZoneInfo("America/New_York"))
    assert "e.g. 2026-11-24T10:30:00-05:00, 2026-11-24T09:30:00Z, or without an offset, read in America/New_York" \
        in str(e.value)
    assert "+01:00" not in str(e.value)
