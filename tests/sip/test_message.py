"""SIP messages: what is parsed, what is refused, and responses built from the request (RFC 3261 §8.2.6)."""

from __future__ import annotations

import pytest

from gateway.sip.message import BadRequest, Drop, DropKind, build_response, parse_request, uri_user, with_user
from tests.sip.messages import header, request, status_of


def test_an_invite_is_parsed_with_its_top_via_tags_and_cseq() -> None:
    req = parse_request(request(via="SIP/2.0/UDP 10.0.0.1:5060;received=1.2.3.4, SIP/2.0/TCP b:5070"))
    assert req.method == "INVITE" and req.uri == "sip:0612000001@127.0.0.1:5065"
    assert req.via.transport == "UDP" and req.via.sent_by == "10.0.0.1:5060" and "received" in req.via.params
    assert len(req.vias) == 2 and req.vias[1] == "SIP/2.0/TCP b:5070" and req.via.branch == "z9hG4bK-1"
    assert req.from_tag == "from-1" and req.to_tag == "" and req.cseq == 1 and req.cseq_method == "INVITE"
    assert req.header("x-dnc-campaign") == "legacy"


def test_compact_forms_and_folded_lines_are_understood() -> None:
    raw = (b"OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
           b"f: <sip:a@b>;tag=1\r\nt: <sip:gw@127.0.0.1>\r\ni: abc\r\nCSeq: 7\r\n OPTIONS\r\nl: 0\r\n\r\n")
    req = parse_request(raw)
    assert req.call_id == "abc" and req.cseq == 7 and req.cseq_method == "OPTIONS" and req.from_tag == "1"


@pytest.mark.parametrize(("raw", "kind"), [
    (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\r\n", DropKind.RESPONSE),
    (b"\x00\x01garbage", DropKind.NOT_SIP),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", DropKind.NOT_SIP),
    (b"INVITE sip:1@a SIP/2.0\r\nFrom: <sip:a@b>\r\n\r\n", DropKind.INCOMPLETE),
    (b"INVITE sip:1@a SIP/2.0\r\n\xff\xfe: x\r\n\r\n", DropKind.NOT_SIP),
    (b"x" * 70000, DropKind.TOO_LARGE),
])
def test_what_cannot_be_answered_is_dropped(raw: bytes, kind: DropKind) -> None:
    with pytest.raises(Drop) as e:
        parse_request(raw)
    assert e.value.kind is kind


def test_a_wrong_request_that_can_be_answered_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="CSeq method"):
        parse_request(request(cseq_method="BYE"))
    with pytest.raises(BadRequest, match="shorter than Content-Length"):
        parse_request(request().replace(b"Content-Length: 0", b"Content-Length: 20"))
    # on a stream, the framer cut the message by its Content-Length already
    assert parse_request(request(body=b"v=0\r\n"), stream=True).body == b"v=0\r\n"


def test_the_response_copies_the_request_and_adds_a_to_tag() -> None:
    raw = request(via="SIP/2.0/UDP 10.0.0.9:5060, SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-0")
    req = parse_request(raw)
    resp = build_response(req, 302, to_tag="abc", headers=[("Contact", "<sip:0612000001@carrier>")],
                          received=("10.0.0.5", 40000))
    assert status_of(resp) == 302 and resp.startswith(b"SIP/2.0 302 Moved Temporarily\r\n")
    vias = header(resp, "Via")
    assert vias[0] == "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-1;rport=40000;received=10.0.0.5"
    assert vias[1] == "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-0"
    assert header(resp, "To") == ["<sip:0612000001@127.0.0.1>;tag=abc"]
    assert header(resp, "From") == [req.from_] and header(resp, "Call-ID") == ["call-1@agent"]
    assert header(resp, "CSeq") == ["1 INVITE"] and header(resp, "Content-Length") == ["0"]
    assert resp.endswith(b"\r\n\r\n")


def test_a_reason_phrase_or_header_cannot_inject_a_line() -> None:
    req = parse_request(request())
    resp = build_response(req, 400, reason="Bad\r\nX-Evil: 1", headers=[("X-DNC-Reason", "a\r\nX-Evil: 2")])
    assert not header(resp, "X-Evil")


@pytest.mark.parametrize(("uri", "user"), [
    ("sip:0612000001@127.0.0.1:5065", "0612000001"),
    ("sip:+33612000001;npdi@host;user=phone", "+33612000001"),
    ("sips:%2B33612000001@host", "+33612000001"),
    ("tel:+33612000001;phone-context=example.com", "+33612000001"),
    ("sip:host.example.com", ""),
    ("mailto:a@b", ""),
    ("sip:alice:secret@host", "alice"),
])
def test_the_user_of_a_uri(uri: str, user: str) -> None:
    assert uri_user(uri) == user


def test_the_route_gets_the_number_as_its_user() -> None:
    assert with_user("sip:carrier@10.0.0.2:5080", "0612000001") == "sip:0612000001@10.0.0.2:5080"
    assert with_user("sip:10.0.0.2:5080;transport=tcp", "+33612") == "sip:+33612@10.0.0.2:5080;transport=tcp"
    assert with_user("sip:c@h", "12#3") == "sip:12%233@h"
