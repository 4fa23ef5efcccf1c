from __future__ import annotations

import pytest

from gateway.replay.sip import SipError, SipStream, addr_params, addr_uri, parse_message, uri_user
from tests.replay.captures import invite, response


def test_request_with_long_headers() -> None:
    m = parse_message(invite("0612000001", call_id="abc"))
    assert (m.method, m.uri, m.status) == ("INVITE", "sip:0612000001@127.0.0.1:5070", 0)
    assert m.header("Call-ID") == "abc" and m.header("i") == "abc"
    assert m.header("x-campaign") == "prospect"
    assert m.body.startswith(b"v=0")


def test_compact_headers_read_as_long_ones() -> None:
    m = parse_message(invite("0612000001", call_id="abc", compact=True))
    assert m.header("call-id") == "abc"
    assert m.header("To") == "<sip:0612000001@127.0.0.1:5070>"
    assert m.header("from") is not None and m.header("content-length") == str(len(m.body))


def test_response_and_folded_header() -> None:
    raw = b"SIP/2.0 180 Ringing\r\nCall-ID: x\r\nSubject: a\r\n  folded\r\nl: 0\r\n\r\n"
    m = parse_message(raw)
    assert m.status == 180 and not m.is_request
    assert m.header("s") == "a folded"


def test_udp_content_length_rules() -> None:
    head = b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: x\r\n"
    assert parse_message(head + b"\r\nhello").body == b"hello"  # no Content-Length: to the end of the datagram
    assert parse_message(head + b"Content-Length: 2\r\n\r\nhello").body == b"he"
    with pytest.raises(SipError, match="shorter than Content-Length"):
        parse_message(head + b"Content-Length: 20\r\n\r\nhello")


@pytest.mark.parametrize("raw", [b"GET / HTTP/1.1\r\n\r\n", b"\x00\x01binary", b"",
                                 b"INVITE sip:x SIP/2.0\r\nbad\r\n\r\n"])
def test_not_sip(raw: bytes) -> None:
    with pytest.raises(SipError):
        parse_message(raw)


@pytest.mark.parametrize(("uri", "user"), [
    ("sip:0612345678@gw.example", "0612345678"),
    ("sip:0612345678;phone-context=+33@gw.example;user=phone", "0612345678"),
    ("sips:+33612345678@gw.example:5061;transport=tls", "+33612345678"),
    ("tel:+33-6-12-34-56-78;phone-context=+33", "+33612345678"),
    ("tel:0612345678", "0612345678"),
    ("sip:%2B33612345678@gw", "+33612345678"),
    ("sip:alice:secret@gw", "alice"),
    ("sip:gw.example", ""),
    ("mailto:x@y", ""),
    ("nonsense", ""),
])
def test_uri_user(uri: str, user: str) -> None:
    assert uri_user(uri) == user


def test_name_addr() -> None:
    v = '"Smith, <John>" <sip:0162000000@pbx;user=phone>;tag=abc;x=1'
    assert addr_uri(v) == "sip:0162000000@pbx;user=phone"
    assert addr_params(v) == {"tag": "abc", "x": "1"}
    assert addr_uri("sip:bob@host;tag=9") == "sip:bob@host"  # addr-spec: parameters belong to the header
    assert addr_params("sip:bob@host;tag=9") == {"tag": "9"}


def test_stream_reassembles_split_and_batched_messages() -> None:
    a = invite("0612000001", call_id="a", compact=True)
    b = response(200, "OK", "a")
    data = b"\r\n\r\n" + a + b + b"\r\n"  # keep-alive ping, two messages, pong
    s = SipStream()
    got = []
    for i in range(0, len(data), 7):  # every 7 bytes
        got += s.feed(data[i:i + 7])
    assert [m.method or m.status for m in got] == ["INVITE", 200]
    assert got[0].body == parse_message(a).body
    assert s.close() == 0 and s.skipped == 0


def test_stream_resynchronises_after_garbage() -> None:
    s = SipStream()
    got = s.feed(b"tail of a lost message\r\nmore\r\n\r\n" + response(100, "Trying", "z"))
    assert [m.status for m in got] == [100]
    assert s.skipped > 0


def test_stream_keeps_an_incomplete_message_and_reports_it() -> None:
    s = SipStream()
    assert s.feed(invite("0612000001", call_id="a")[:-10]) == []
    assert s.close() > 0


def test_stream_rejects_absurd_content_length() -> None:
    s = SipStream(limit=1000)
    got = s.feed(b"INVITE sip:a@b SIP/2.0\r\nl: 999999\r\n\r\n" + response(180, "Ringing", "q"))
    assert [m.status for m in got] == [180]
    assert "larger than" in s.errors[0]
