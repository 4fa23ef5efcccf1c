"""The transaction table's keys and timers (RFC 3261 §17.2), with the clock as a number."""

from __future__ import annotations

from gateway.sip.message import parse_request
from gateway.sip.transactions import T1, T2, T4, Due, State, Table, invite_key, key_of
from tests.sip.messages import request


def test_keys_follow_the_branch_and_an_ack_or_cancel_find_their_invite() -> None:
    inv = parse_request(request())
    ack = parse_request(request("ACK", cseq_method="ACK", to_tag="x"))
    cancel = parse_request(request("CANCEL"))
    other = parse_request(request(branch="z9hG4bK-2"))
    assert invite_key(key_of(ack)) == key_of(inv) == invite_key(key_of(cancel))
    assert key_of(cancel) != key_of(inv) and key_of(other) != key_of(inv)
    legacy = parse_request(request(branch="old-1"))
    assert key_of(legacy)[0] == "2543" and invite_key(key_of(parse_request(
        request("ACK", branch="old-1", to_tag="x")))) == key_of(legacy)


def test_an_unreliable_invite_is_retransmitted_on_timer_g_until_its_ack_then_forgotten() -> None:
    table = Table()
    req = parse_request(request())
    t = table.begin_invite(key_of(req), ("127.0.0.1", 5060), False, req, "tag", now=0.0)
    table.complete(t, 302, b"answer", now=0.1)
    times = []
    now = 0.1
    while True:
        at = table.next_timer()
        assert at is not None
        due = table.due(at)
        if due and due[0][0] is not Due.RETRANSMIT:
            break
        if due:
            times.append(round(at - now, 3))
            now = at
    assert times[:4] == [T1, 2 * T1, 4 * T1, T2] and all(x <= T2 for x in times)
    assert due[0][0] is Due.NO_ACK and round(at - 0.1, 3) == 64 * T1 and len(table) == 0


def test_the_ack_stops_retransmissions_and_timer_i_ends_it() -> None:
    table = Table()
    req = parse_request(request())
    t = table.begin_invite(key_of(req), "peer", False, req, "tag", now=0.0)
    table.complete(t, 603, b"answer", now=0.0)
    table.confirm(t, now=0.2)
    assert t.state is State.CONFIRMED
    assert table.due(0.2 + T4 - 0.01) == [] and len(table) == 1
    assert [d for d, _ in table.due(0.2 + T4)] == [Due.EXPIRED] and len(table) == 0


def test_a_decision_past_its_deadline_is_due_once() -> None:
    table = Table(decision_timeout=2.0)
    req = parse_request(request())
    table.begin_invite(key_of(req), "peer", True, req, "tag", now=10.0)
    assert table.due(11.9) == []
    assert [d for d, _ in table.due(12.0)] == [Due.DEADLINE]


def test_non_invite_answers_linger_on_udp_only() -> None:
    table = Table()
    req = parse_request(request("OPTIONS"))
    table.answered(key_of(req), "peer", True, req, "t", 200, b"ok", now=0.0)
    assert len(table) == 0
    table.answered(key_of(req), "peer", False, req, "t", 200, b"ok", now=0.0)
    assert len(table) == 1 and [d for d, _ in table.due(64 * T1)] == [Due.EXPIRED]


def test_the_table_is_bounded() -> None:
    table = Table(limit=2)
    for i in range(2):
        req = parse_request(request(branch=f"z9hG4bK-{i}"))
        table.begin_invite(key_of(req), "p", False, req, "t", now=0.0)
    assert table.full
