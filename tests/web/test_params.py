"""API input validation: every bad input gets a message naming the field and what is accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.web import params
from gateway.web.params import BadRequest


def test_check_query() -> None:
    q = params.check_query({"number": " 06 12 00 00 01 ", "campaign": "prospect", "at": "2026-11-24T10:30:00+01:00",
                            "caller_id": "0162000000"})
    assert q.number == "06 12 00 00 01"
    assert q.campaign == "prospect"
    assert q.at == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert q.at.utcoffset() == timedelta(hours=1)
    assert q.caller_id == "0162000000"
    assert params.check_query({"number": "+33612000001", "campaign": "a.b-c_1", "at": "2026-11-24T09:30:00Z"}).at \
        == datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)  # noqa: UP017


@pytest.mark.parametrize(("query", "field", "words"), [
    ({"campaign": "prospect"}, "number", "missing number"),
    ({"number": "", "campaign": "prospect"}, "number", "missing number"),
    ({"number": "06abc", "campaign": "prospect"}, "number", "not a phone number"),
    ({"number": "+", "campaign": "prospect"}, "number", "not a phone number"),
    ({"number": "1" * 40, "campaign": "prospect"}, "number", "too long"),
    ({"number": "0612000001"}, "campaign", "missing campaign"),
    ({"number": "0612000001", "campaign": "../etc"}, "campaign", "not a campaign name"),
    ({"number": "0612000001", "campaign": "x" * 65}, "campaign", "not a campaign name"),
    ({"number": "0612000001", "campaign": "prospect", "at": "tomorrow"}, "at", "not an ISO-8601"),
    ({"number": "0612000001", "campaign": "prospect", "at": "2026-11-24T10:30:00"}, "at", "no UTC offset"),
    ({"number": "0612000001", "campaign": "prospect", "caller_id": "hidden"}, "caller_id", "not a phone number"),
    ({"number": "0612000001", "campaign": "prospect", "campain": "x"}, "campain", "unknown parameter"),
])
def test_check_query_errors(query: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(BadRequest) as e:
        params.check_query(query)
    assert e.value.field == field
    assert words in e.value.message
    assert e.value.as_json()["error"] == e.value.message


def test_number_body() -> None:
    b = params.number_body(b'{"number": "0612000001", "campaign": "prospect", "at": "2026-11-24T10:00:00+01:00"}')
    assert (b.number, b.campaign) == ("0612000001", "prospect")
    assert b.at is not None


@pytest.mark.parametrize(("raw", "words"), [
    (b"", "empty body"),
    (b"   ", "empty body"),
    (b"{number: 1}", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b'["0612000001"]', "must be a JSON object"),
    (b'{"numbr": "0612000001"}', "unknown field 'numbr'"),
    (b"{}", "missing number"),
    (b'{"number": 612000001}', "must be a string"),
    (b'{"number": "0612000001", "at": 5}', "ISO-8601 string"),
])
def test_number_body_errors(raw: bytes, words: str) -> None:
    with pytest.raises(BadRequest) as e:
        params.number_body(raw)
    assert words in e.value.message


def test_reload_body() -> None:
    known = frozenset({"bloctel", "consent"})
    assert params.reload_body(b"", known) is None
    assert params.reload_body(b"{}", known) is None
    assert params.reload_body(b'{"lists": ["bloctel"]}', known) == ["bloctel"]
    with pytest.raises(BadRequest, match="no list named 'nope'"):
        params.reload_body(b'{"lists": ["nope"]}', known)
    with pytest.raises(BadRequest, match="list of list names"):
        params.reload_body(b'{"lists": "bloctel"}', known)


def test_audit_query() -> None:
    q = params.audit_query({"number": "0612000001", "since": "2026-11-01T00:00:00Z", "limit": "50"})
    assert q.number == "0612000001" and q.limit == 50 and q.since is not None and q.until is None
    assert params.audit_query({}).limit == 1000
    for bad, words in (({"limit": "0"}, "limit"), ({"limit": "ten"}, "limit"), ({"limit": "100001"}, "limit"),
                       ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "before"),
                       ({"number": "x"}, "not a phone number"), ({"campaign": "a b"}, "campaign"),
                       ({"verdict": "BLOCK"}, "unknown parameter")):
        with pytest.raises(BadRequest, match=words):
            params.audit_query(bad)
