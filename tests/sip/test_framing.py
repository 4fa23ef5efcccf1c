"""SIP over TCP: messages cut by Content-Length, keep-alives, limits."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sip.framing import FramingError, StreamFramer
from tests.sip.messages import request


def test_messages_are_cut_by_content_length_whatever_the_reads() -> None:
    a, b = request(body=b"v=0\r\n"), request("OPTIONS", branch="z9hG4bK-2")
    stream = a + b
    for step in (1, 7, len(stream)):
        f = StreamFramer()
        got: list[bytes] = []
        for i in range(0, len(stream), step):
            got += f.receive_data(stream[i:i + step])
        assert got == [a, b] and f.buffered == 0


def test_a_crlf_ping_is_skipped_and_counted_for_a_pong() -> None:
    f = StreamFramer()
    assert f.receive_data(b"\r\n\r\n") == [] and f.pongs == 1
    assert f.receive_data(b"\r\n\r\n" + request()) == [request()] and f.pongs == 2


def test_a_header_block_without_end_and_a_huge_body_are_refused() -> None:
    with pytest.raises(FramingError):
        StreamFramer(limit=100).receive_data(b"INVITE sip:x SIP/2.0\r\n" + b"X: y\r\n" * 30)
    with pytest.raises(FramingError):
        StreamFramer(limit=1000).receive_data(request().replace(b"Content-Length: 0", b"Content-Length: 99999"))


def test_end_of_stream_stops_the_framer() -> None:
    f = StreamFramer()
    assert f.receive_data(b"") == [] and f.closed and f.receive_data(request()) == []


@settings(deadline=None)  # no timing assertion: a loaded CI machine is slow, not wrong
@given(st.lists(st.integers(1, 400), max_size=20), st.binary(max_size=300))
def test_any_split_gives_the_same_messages_and_garbage_only_framing_errors(cuts: list[int], junk: bytes) -> None:
    stream = request(body=b"v=0\r\n") + request("OPTIONS", branch="z9hG4bK-2")
    f = StreamFramer()
    got: list[bytes] = []
    at = 0
    for c in cuts:
        got += f.receive_data(stream[at:at + c])
        at += c
    got += f.receive_data(stream[at:]) if at < len(stream) else []
    assert b"".join(got) == stream.lstrip(b"\r\n")
    g = StreamFramer(limit=200)
    with contextlib.suppress(FramingError):
        g.receive_data(junk)
