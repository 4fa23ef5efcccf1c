"""The redirect server's answers, sans-I/O: one decision per INVITE however often it is retransmitted, ACK
absorbed, CANCEL answered, OPTIONS 200, malformed input 400 or dropped, never an exception (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.sip.redirect import Decide, Decline, Dropped, Redirect, Redirector, Send, Unavailable
from gateway.sip.transactions import T1, Table
from tests.sip.messages import header, request, status_of

SRC = ("127.0.0.1", 5060)


def server(**kw: object) -> Redirector:
    return Redirector("sip:carrier@127.0.0.1:5080", tags=lambda: "t0", **kw)  # type: ignore[arg-type]


def only_send(events: list) -> Send:
    assert len(events) == 1 and isinstance(events[0], Send), events
    return events[0]


def test_an_invite_asks_once_and_its_retransmissions_get_100_then_the_same_302() -> None:
    r = server()
    [ask] = r.receive(request(extra="P-Asserted-Identity: <tel:+33162000000>"), SRC, SRC, 0.0)
    assert isinstance(ask, Decide)
    assert (ask.number, ask.campaign, ask.caller_id) == ("0612000001", "legacy", "+33162000000")
    trying = only_send(r.receive(request(), SRC, SRC, 0.5))
    assert trying.status == 100 and trying.retransmission and not header(trying.data, "To")[0].count("tag=")
    final = only_send(r.decided(ask.key, Redirect("0612000001", "id1"), 0.6))
    assert final.status == 302 and final.elapsed == 0.6 and not final.retransmission
    assert header(final.data, "Contact") == ["<sip:0612000001@127.0.0.1:5080>"]
    assert header(final.data, "X-DNC-Decision-Id") == ["id1"]
    assert header(final.data, "To") == ["<sip:0612000001@127.0.0.1>;tag=t0"]
    again = only_send(r.receive(request(), SRC, SRC, 0.7))
    assert again.data == final.data and again.retransmission
    assert r.decided(ask.key, Redirect("0612000001", "id2"), 0.8) == []  # a late second answer changes nothing
    # the ACK is absorbed and ends Timer G's retransmissions
    assert r.receive(request("ACK", to_tag="t0"), SRC, SRC, 0.9) == []
    assert r.receive(request(), SRC, SRC, 1.0) == []  # confirmed: nothing more to say
    assert r.timers(0.9 + 2 * T1) == []  # no Timer G retransmission after the ACK


def test_a_block_is_603_with_reason_and_a_failure_503() -> None:
    r = server()
    [ask] = r.receive(request(), SRC, SRC, 0.0)
    final = only_send(r.decided(ask.key, Decline("opposition_list", "id1"), 0.0))
    assert final.status == 603 and final.data.startswith(b"SIP/2.0 603 Decline\r\n")
    assert header(final.data, "Reason") == ['Q.850;cause=21;text="dnc:opposition_list"']
    assert header(final.data, "X-DNC-Reason") == ["opposition_list"]
    [ask] = r.receive(request(branch="z9hG4bK-2"), SRC, SRC, 0.0)
    final = only_send(r.decided(ask.key, Unavailable("state_unavailable"), 0.0))
    assert final.status == 503 and header(final.data, "X-DNC-Reason") == ["state_unavailable"]


def test_monitor_mode_is_a_302_marked_would_block() -> None:
    r = server()
    [ask] = r.receive(request(), SRC, SRC, 0.0)
    final = only_send(r.decided(ask.key, Redirect("0612000001", "id", would_block=True), 0.0))
    assert final.status == 302 and header(final.data, "X-DNC-Would-Block") == ["1"]


def test_the_number_falls_back_to_to_and_the_caller_id_to_from() -> None:
    r = server()
    [ask] = r.receive(request(uri="sip:127.0.0.1:5065", campaign=None), SRC, SRC, 0.0)
    assert isinstance(ask, Decide) and ask.number == "0612000001" and ask.campaign is None
    assert ask.caller_id == "1001"


def test_a_cancel_gets_200_and_its_pending_invite_487() -> None:
    r = server()
    [ask] = r.receive(request(), SRC, SRC, 0.0)
    ok, terminated = r.receive(request("CANCEL"), SRC, SRC, 0.1)
    assert isinstance(ok, Send) and ok.status == 200 and ok.method == "CANCEL"
    assert isinstance(terminated, Send) and terminated.status == 487 and terminated.method == "INVITE"
    assert r.decided(ask.key, Redirect("0612000001", "id"), 0.2) == []  # the decision arrives too late
    assert only_send(r.receive(request("CANCEL"), SRC, SRC, 0.3)).status == 200  # retransmitted CANCEL
    assert only_send(r.receive(request("CANCEL", branch="z9hG4bK-none"), SRC, SRC, 0.3)).status == 481


def test_a_cancel_after_the_answer_changes_nothing() -> None:
    r = server()
    [ask] = r.receive(request(), SRC, SRC, 0.0)
    r.decided(ask.key, Redirect("0612000001", "id"), 0.0)
    assert only_send(r.receive(request("CANCEL"), SRC, SRC, 0.1)).status == 200


def test_options_other_methods_and_in_dialog_requests() -> None:
    r = server()
    ok = only_send(r.receive(request("OPTIONS"), SRC, SRC, 0.0))
    assert ok.status == 200 and header(ok.data, "Allow") == ["INVITE, ACK, CANCEL, OPTIONS"]
    assert only_send(r.receive(request("BYE", branch="z9hG4bK-b"), SRC, SRC, 0.0)).status == 405
    assert only_send(r.receive(request(to_tag="x", branch="z9hG4bK-c"), SRC, SRC, 0.0)).status == 481
    assert only_send(r.receive(request(uri="mailto:x@y", branch="z9hG4bK-d"), SRC, SRC, 0.0)).status == 416
    bad = only_send(r.receive(request(cseq_method="BYE", branch="z9hG4bK-e"), SRC, SRC, 0.0))
    assert bad.status == 400 and b"CSeq method" in bad.data.split(b"\r\n")[0]


def test_draining_answers_503_to_invites_and_options() -> None:
    r = server()
    r.draining = True
    final = only_send(r.receive(request(), SRC, SRC, 0.0))
    assert final.status == 503 and header(final.data, "X-DNC-Reason") == ["draining"]
    assert only_send(r.receive(request("OPTIONS"), SRC, SRC, 0.0)).status == 503


def test_a_full_table_answers_503_without_deciding() -> None:
    r = server(table=Table(limit=1))
    assert isinstance(r.receive(request(), SRC, SRC, 0.0)[0], Decide)
    over = only_send(r.receive(request(branch="z9hG4bK-2"), SRC, SRC, 0.0))
    assert over.status == 503 and header(over.data, "X-DNC-Reason") == ["overloaded"]


def test_a_decision_past_its_deadline_is_answered_503() -> None:
    r = server(table=Table(decision_timeout=2.0))
    [ask] = r.receive(request(), SRC, SRC, 0.0)
    assert r.next_timer() == 2.0
    [late] = r.timers(2.0)
    assert isinstance(late, Send) and late.status == 503 and header(late.data, "X-DNC-Reason") == [
        "decision_timeout"]
    assert r.decided(ask.key, Redirect("0612000001", "id"), 2.1) == []


def test_a_wrong_ack_is_never_answered() -> None:
    r = server()
    assert r.receive(request("ACK", cseq_method="INVITE", to_tag="t"), SRC, SRC, 0.0) == [Dropped("bad_ack")]
    assert r.receive(request("ACK", to_tag="t").replace(b"Content-Length: 0", b"Content-Length: 9"),
                     SRC, SRC, 0.0) == [Dropped("bad_ack")]


def test_a_response_or_garbage_is_dropped() -> None:
    r = server()
    assert r.receive(b"SIP/2.0 200 OK\r\n\r\n", SRC, SRC, 0.0) == [Dropped("response")]
    assert r.receive(b"\x16\x03\x01 TLS hello", SRC, SRC, 0.0) == [Dropped("not_sip")]


VALID = [request(), request("OPTIONS"), request("ACK", to_tag="t"), request("CANCEL"), request(body=b"v=0\r\n")]


def _check(events: list, r: Redirector, data: bytes = b"") -> None:
    for e in events:
        if isinstance(e, Send) and data.startswith(b"ACK "):
            assert e.retransmission or e.method != "ACK", "an ACK was answered"
        if isinstance(e, Send):
            assert e.data.startswith(b"SIP/2.0 ") and e.data.endswith(b"\r\n\r\n")
            assert 100 <= status_of(e.data) < 700
        elif isinstance(e, Decide):
            r.decided(e.key, Decline("opposition_list", "id"), 0.0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    r = server()
    _check(r.receive(data, SRC, SRC, 0.0), r)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 8), st.binary(max_size=12)),
                                        max_size=6))
def test_mutated_requests_never_raise(base: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(base)
    for at, cut, insert in edits:
        at = min(at, len(data))
        data[at:at + cut] = insert
    r = server()
    for now in (0.0, 0.5):  # and its retransmission
        _check(r.receive(bytes(data), SRC, SRC, now), r, bytes(data))
    _check(r.timers(100.0), r)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["INVITE", "ACK", "CANCEL", "OPTIONS", "decide", "timer"]), max_size=20))
def test_any_order_of_requests_decides_each_invite_at_most_once(steps: list[str]) -> None:
    r = server()
    asks: list[Decide] = []
    now = 0.0
    for step in steps:
        now += 0.3
        if step == "decide":
            for a in asks:
                r.decided(a.key, Redirect("0612000001", "id"), now)
        elif step == "timer":
            r.timers(now + 40)
        else:
            events = r.receive(request(step, to_tag="t0" if step == "ACK" else ""), SRC, SRC, now)
            asks += [e for e in events if isinstance(e, Decide)]
            finals = [e for e in events if isinstance(e, Send) and e.method == "INVITE" and e.status >= 200
                      and not e.retransmission]
            assert len(finals) <= 1
    # retransmissions within the transaction's life never decide twice
    assert len(asks) <= 1 + sum(1 for s in steps if s == "timer")
