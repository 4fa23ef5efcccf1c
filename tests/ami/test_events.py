"""The correlation core, fed the recorded events directly (no sockets) with a hand-driven clock."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.ami.events import Bypass, BypassKind, CallTracker, Confirmed, Decided, dialled_candidates
from gateway.numbers import Normaliser
from tests.ami.recording import (
    ALLOWED_CHANNEL,
    ALLOWED_UID,
    BLOCKED_CHANNEL,
    BLOCKED_UID,
    bypass,
    headers,
    load,
)

PARSE = Normaliser("FR").parse
KEY_1 = 33612000001
KEY_2 = 33612000002


def tracker(grace: float = 30.0, **kw: int) -> CallTracker:
    return CallTracker("PJSIP/trunk", grace, PARSE, **kw)


def feed(t: CallTracker, messages: Iterable[bytes], now: float = 100.0) -> list[Confirmed | Bypass]:
    out = []
    for m in messages:
        e = t.event(headers(m), now)
        if e is not None:
            out.append(e)
    return out


def dial_begin(channel: str = "PJSIP/agent-00000001", uid: str = "9.1", linkedid: str = "",
               dest: str = "PJSIP/trunk-00000002", dial_string: str = "0612000002@trunk", exten: str = "0612000002",
               dest_uid: str = "9.2") -> dict[str, str]:
    h = {"Event": "DialBegin", "DestChannel": dest, "DestUniqueid": dest_uid, "DestLinkedid": linkedid or uid,
         "DestExten": exten, "DialString": dial_string}
    if channel:
        h.update({"Channel": channel, "Uniqueid": uid, "Linkedid": linkedid or uid})
    return h


def own(decision_id: str = "d1", key: int = KEY_2, allow: bool = True, channel: str = "PJSIP/agent-00000001",
        uniqueid: str = "9.1", campaign: str = "spring") -> Decided:
    return Decided(decision_id, key, campaign, allow, channel, uniqueid)


def test_recorded_calls_confirm_the_allowed_attempt_and_flag_nothing() -> None:
    t = tracker()
    t.decided(own("blocked", KEY_1, False, BLOCKED_CHANNEL, BLOCKED_UID), 99.0)
    t.decided(own("allowed", KEY_2, True, ALLOWED_CHANNEL, ALLOWED_UID), 99.5)
    effects = feed(t, load().events)
    assert effects == [Confirmed("allowed", "spring", ALLOWED_CHANNEL, ALLOWED_UID, "+3361•••••02")]
    assert t.sizes["channels"] == 0  # every channel hung up and forgotten


def test_varset_from_another_gateway_covers_the_call_without_counting_it() -> None:
    # No decision of ours: the DNC_DECISION_ID VarSet (another gateway's) is enough not to flag it.
    t = tracker()
    assert feed(t, load().events) == []
    assert t.stats == {"events": t.stats["events"], "dial_begins": 1, "confirmed": 0, "bypasses": 0}


def test_bypass_stream_is_flagged_once() -> None:
    t = tracker()
    effects = feed(t, bypass(load()).events)
    assert effects == [Bypass(BypassKind.NO_DECISION, ALLOWED_CHANNEL, "PJSIP/trunk-0000000c", ALLOWED_UID,
                              ALLOWED_UID, "+3361•••••02", "", "")]
    assert effects[0].hangup_channel == ALLOWED_CHANNEL


def test_a_decision_older_than_the_grace_does_not_cover() -> None:
    t = tracker(grace=5.0)
    t.decided(own(), 10.0)
    e = t.event(dial_begin(), 15.1)
    assert isinstance(e, Bypass) and e.kind is BypassKind.NO_DECISION
    assert t.sizes["decisions"] == 0  # pruned


def test_limit_of_grace_is_inclusive() -> None:
    t = tracker(grace=5.0)
    t.decided(own(), 10.0)
    assert isinstance(t.event(dial_begin(), 15.0), Confirmed)


def test_number_fallback_covers_one_call_only() -> None:
    # Asked over HTTP (no channel): the number ties it to the first call that dials it.
    t = tracker()
    t.decided(own(channel="", uniqueid=""), 1.0)
    assert isinstance(t.event(dial_begin(uid="5.1", channel="PJSIP/a-1"), 2.0), Confirmed)
    # The same call trying a second trunk: neither counted again nor flagged.
    assert t.event(dial_begin(uid="5.1", channel="PJSIP/a-1", dest="PJSIP/trunk2-3", dest_uid="5.3"), 2.5) is None
    # Another call to the same number, with no decision of its own: a bypass.
    e = t.event(dial_begin(uid="6.1", channel="PJSIP/b-1"), 3.0)
    assert isinstance(e, Bypass) and e.kind is BypassKind.NO_DECISION


def test_blocked_decision_then_dial_is_a_bypass() -> None:
    t = tracker()
    t.decided(own(allow=False, campaign="spring"), 1.0)
    e = t.event(dial_begin(), 2.0)
    assert isinstance(e, Bypass)
    assert (e.kind, e.campaign, e.decision_id) == (BypassKind.BLOCKED, "spring", "d1")


def test_blocked_verdict_seen_on_the_wire_then_dial_is_a_bypass() -> None:
    t = tracker()
    base = {"Channel": "PJSIP/agent-00000001", "Uniqueid": "9.1", "Linkedid": "9.1", "Event": "VarSet"}
    t.event({**base, "Variable": "DNC_VERDICT", "Value": "BLOCK"}, 1.0)
    t.event({**base, "Variable": "DNC_DECISION_ID", "Value": "other-gw-1"}, 1.0)
    e = t.event(dial_begin(), 2.0)
    assert isinstance(e, Bypass) and e.kind is BypassKind.BLOCKED and e.decision_id == "other-gw-1"


def test_screened_for_one_number_then_dialling_another() -> None:
    t = tracker()
    t.decided(own(key=KEY_1), 1.0)
    e = t.event(dial_begin(), 2.0)  # dials 0612000002
    assert isinstance(e, Bypass) and e.kind is BypassKind.OTHER_NUMBER


def test_local_channel_chain_is_tied_by_linkedid() -> None:
    # The AGI ran on the agent's channel (9.1); Dial() then went through a Local channel whose ;2 half dials.
    t = tracker()
    t.decided(own(), 1.0)
    t.event({"Event": "Newchannel", "Channel": "Local/0612000002@out-00000001;2", "Uniqueid": "9.4",
             "Linkedid": "9.1"}, 1.1)
    e = t.event(dial_begin(channel="Local/0612000002@out-00000001;2", uid="9.4", linkedid="9.1"), 1.2)
    assert isinstance(e, Confirmed) and e.decision_id == "d1"


def test_decision_asked_on_the_dialling_leg_of_a_chain() -> None:
    # Reverse: the AGI ran on Local;2 (9.4) and the agent's channel (9.1, the linkedid) dials.
    t = tracker()
    t.event({"Event": "Newchannel", "Channel": "Local/x@out-00000001;2", "Uniqueid": "9.4", "Linkedid": "9.1"}, 1.0)
    t.decided(own(channel="Local/x@out-00000001;2", uniqueid="9.4"), 1.1)
    assert isinstance(t.event(dial_begin(), 1.2), Confirmed)


def test_originated_call_has_no_calling_channel() -> None:
    t = tracker()
    e = t.event(dial_begin(channel=""), 1.0)
    assert isinstance(e, Bypass) and e.hangup_channel == "PJSIP/trunk-00000002"


def test_emergency_and_short_numbers_are_never_flagged() -> None:
    t = tracker()
    assert t.event(dial_begin(dial_string="112@trunk", exten="112"), 1.0) is None
    assert t.event(dial_begin(dial_string="3949@trunk", exten="3949"), 1.0) is None


def test_internal_calls_are_ignored() -> None:
    t = tracker()
    assert t.event(dial_begin(dest="PJSIP/agent2-00000009", dial_string="agent2", exten="s"), 1.0) is None
    assert t.stats["dial_begins"] == 0


def test_a_number_dialled_elsewhere_than_the_trunk_prefix_still_counts() -> None:
    t = tracker()
    e = t.event(dial_begin(dest="PJSIP/carrier2-00000005", dial_string="carrier2/sip:+33612000002@sbc"), 1.0)
    assert isinstance(e, Bypass) and e.masked == "+3361•••••02"


def test_monitor_mode_allow_is_confirmed() -> None:
    t = tracker()
    t.decided(own(allow=True), 1.0)  # ALLOW with would_block: allow is what matters
    assert isinstance(t.event(dial_begin(), 2.0), Confirmed)


def test_our_decision_wins_over_a_varset_seen_first() -> None:
    # Two TCP streams race: the VarSet of our own decision may be read before decided() runs.
    t = tracker()
    base = {"Channel": "PJSIP/agent-00000001", "Uniqueid": "9.1", "Linkedid": "9.1", "Event": "VarSet"}
    t.event({**base, "Variable": "DNC_VERDICT", "Value": "ALLOW"}, 1.0)
    t.event({**base, "Variable": "DNC_DECISION_ID", "Value": "d1"}, 1.0)
    t.decided(own(), 1.1)
    e = t.event(dial_begin(), 2.0)
    assert isinstance(e, Confirmed) and e.campaign == "spring"


def test_a_foreign_varset_does_not_hide_our_decision() -> None:
    t = tracker()
    t.decided(own(), 1.0)
    base = {"Channel": "PJSIP/agent-00000001", "Uniqueid": "9.1", "Linkedid": "9.1", "Event": "VarSet"}
    t.event({**base, "Variable": "DNC_DECISION_ID", "Value": "x1"}, 1.1)
    assert isinstance(t.event(dial_begin(), 2.0), Confirmed)


def test_memory_is_bounded() -> None:
    t = tracker(max_entries=100)
    for i in range(1000):
        t.decided(own(f"d{i}", KEY_2 + i, channel=f"PJSIP/a-{i}", uniqueid=f"1.{i}"), 1.0)
        t.event({"Event": "Newchannel", "Channel": f"PJSIP/a-{i}", "Uniqueid": f"1.{i}", "Linkedid": f"1.{i}"}, 1.0)
    assert t.sizes["decisions"] == 100 and t.sizes["channels"] <= 100 and t.sizes["calls"] <= 100
    assert len(t._by_uid) == len(t._by_channel) == len(t._by_id) == 100


def test_dialled_candidates() -> None:
    assert dialled_candidates("0612000002@trunk", "0612000002", "0612000002")[0] == "0612000002"
    assert dialled_candidates("trunk/sip:+33612000002@10.0.0.1:5060", "", "")[-1] == "+33612000002"
    assert "0612000002" in dialled_candidates("0612000002@out/n", "", "<unknown>")
