from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from gateway.replay.pcap import CaptureError, read_capture
from gateway.replay.sources import Call, InputError, read_trace
from tests.replay.captures import T0, ether, invite, response, sll, sll2, tcp_ip, tcp_segments, udp_ip, write


def _numbers(path: Path) -> list[str]:
    return [c.number for c in read_trace(path).calls]


def test_udp_call_flow_keeps_initial_invites_once(tmp_path: Path) -> None:
    frames = [
        (T0, ether(udp_ip(invite("0612000001", call_id="c1")))),
        (T0 + 0.5, ether(udp_ip(invite("0612000001", call_id="c1")))),  # retransmission
        (T0 + 0.6, ether(udp_ip(response(100, "Trying", "c1"), sport=5070, dport=5060))),
        (T0 + 1, ether(udp_ip(response(200, "OK", "c1"), sport=5070, dport=5060))),
        (T0 + 2, ether(udp_ip(invite("0612000001", call_id="c1", to_tag="b1", cseq=2)))),  # re-INVITE
        (T0 + 3, ether(udp_ip(invite("0612000002", call_id="c2", campaign=None, caller="anonymous",
                                     pai="0162000001")))),
        (T0 + 4, ether(udp_ip(b"\x80\x00" + b"\x00" * 170, sport=6000, dport=6002))),  # RTP
        (T0 + 5, ether(udp_ip(b"\x12\x34\x01\x00\x00\x01", sport=40001, dport=53))),  # DNS
        (T0 + 6, bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_ARP, data=b"\x00" * 28))),
    ]
    trace = read_trace(write(tmp_path / "udp.pcap", frames))
    assert trace.kind == "pcap"
    assert trace.calls == (
        Call("0612000001", "prospect", "0162000000", T0, "c1", "frame 1"),
        Call("0612000002", "", "0162000001", T0 + 3, "c2", "frame 6"),
    )
    assert trace.stats["duplicate_invites"] == 1
    assert trace.stats["non_sip"] == 3
    assert trace.stats["sip_messages"] == 6


def test_number_from_request_uri_params_stripped_or_from_to(tmp_path: Path) -> None:
    frames = [
        (T0, ether(udp_ip(invite("0612000003", call_id="a", uri="sip:0612000003;phone-context=+33@pbx;user=phone")))),
        (T0 + 1, ether(udp_ip(invite("0612000004", call_id="b", uri="sip:pbx.example")))),  # no user: To
        (T0 + 2, ether(udp_ip(invite("x", call_id="c", uri="tel:+33-6-12-00-00-05")))),
    ]
    assert _numbers(write(tmp_path / "u.pcap", frames)) == ["0612000003", "0612000004", "+33612000005"]


@pytest.mark.parametrize("ng", [False, True])
@pytest.mark.parametrize(("linktype", "wrap"), [
    (dpkt.pcap.DLT_EN10MB, ether),
    (dpkt.pcap.DLT_LINUX_SLL, sll),
    (276, sll2),
    (dpkt.pcap.DLT_RAW, lambda b: b),
])
def test_link_layers_ipv4_and_ipv6(tmp_path: Path, linktype: int, wrap: object, ng: bool) -> None:
    assert callable(wrap)
    frames = [
        (T0, wrap(udp_ip(invite("0612000001", call_id="v4")))),
        (T0 + 1, wrap(udp_ip(invite("0612000002", call_id="v6", compact=True), src="2001:db8::1", dst="2001:db8::2"))),
        *[(T0 + 2, wrap(seg)) for seg in tcp_segments(invite("0612000003", call_id="t6"), [100], src="::1",
                                                       dst="::1")],
    ]
    path = write(tmp_path / "cap", frames, linktype=linktype, ng=ng)
    trace = read_trace(path)
    assert trace.kind == ("pcapng" if ng else "pcap")
    assert [c.number for c in trace.calls] == ["0612000001", "0612000002", "0612000003"]


def test_tcp_split_batched_out_of_order_and_retransmitted(tmp_path: Path) -> None:
    a = invite("0612000001", call_id="t1", compact=True)
    b = invite("0612000002", call_id="t2")
    c = invite("0612000003", call_id="t3")
    stream = a + b + c  # three messages in one byte stream
    segs = tcp_segments(stream, [50, 200, len(a) + len(b) - 250, 10])
    # deliver segment 3 before 2, and retransmit segment 2
    order = [segs[0], segs[1], segs[3], segs[2], segs[2], *segs[4:]]
    frames = [(T0 + i * 0.01, ether(s)) for i, s in enumerate(order)]
    trace = read_trace(write(tmp_path / "tcp.pcapng", frames, ng=True))
    assert [c.number for c in trace.calls] == ["0612000001", "0612000002", "0612000003"]
    assert trace.stats["tcp_streams"] == 1 and trace.stats["duplicate_invites"] == 0
    assert not trace.warnings


def test_tcp_capture_starting_mid_message_and_with_a_gap(tmp_path: Path) -> None:
    a = invite("0612000001", call_id="g1")
    b = invite("0612000002", call_id="g2")
    c = invite("0612000003", call_id="g3")
    frames = [
        (T0, ether(tcp_ip(a[40:], 5000))),  # joined mid-message, no SYN seen
        (T0 + 1, ether(tcp_ip(b, 5000 + len(a) - 40))),
        # the first 30 bytes of c were never captured
        (T0 + 2, ether(tcp_ip(c[30:], 5000 + len(a) - 40 + len(b) + 30))),
        (T0 + 3, ether(tcp_ip(invite("0612000004", call_id="g4"), 5000 + len(a) - 40 + len(b) + len(c)))),
    ]
    trace = read_trace(write(tmp_path / "gap.pcap", frames))
    assert [c.number for c in trace.calls] == ["0612000002", "0612000004"]
    assert any("missing segments" in w for w in trace.warnings)
    assert trace.stats["tcp_skipped_bytes"] > 0


def test_truncated_capture_keeps_what_came_before(tmp_path: Path) -> None:
    frames = [(T0 + i, ether(udp_ip(invite(f"06120000{i:02d}", call_id=f"c{i}")))) for i in range(1, 6)]
    for ng in (False, True):
        full = write(tmp_path / f"full{ng}", frames, ng=ng).read_bytes()
        cut = tmp_path / f"cut{ng}"
        cut.write_bytes(full[:len(full) - 200])
        trace = read_trace(cut)
        assert [c.number for c in trace.calls] == [f"06120000{i:02d}" for i in range(1, 5)]
        assert any("truncated" in w for w in trace.warnings), trace.warnings


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "not a readable capture"),
    (b"\x0a\x0d\x0d\x0a\x1c\x00", "not a readable capture"),
    (b"\x00\x01\x02\xff" * 100, "neither a capture"),
])
def test_unreadable_files_are_input_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_trace(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_trace(tmp_path / "nope.pcap")


def test_unsupported_link_type(tmp_path: Path) -> None:
    path = write(tmp_path / "wifi.pcap", [(T0, b"\x00" * 40)], linktype=105)
    with pytest.raises(CaptureError, match="link type 105"):
        read_capture(path)


def test_capture_without_sip(tmp_path: Path) -> None:
    path = write(tmp_path / "dns.pcap", [(T0, ether(udp_ip(b"\x12\x34" * 10, dport=53)))])
    trace = read_trace(path)
    assert trace.calls == () and "no initial INVITE" in trace.warnings[0]


def _fragments(ip_bytes: bytes, size: int) -> list[bytes]:
    """Cut an IPv4 datagram into fragments carrying ``size`` bytes (a multiple of 8) of payload each."""
    ip = dpkt.ip.IP(ip_bytes)
    payload = bytes(ip.data)
    out = []
    for off in range(0, len(payload), size):
        frag = dpkt.ip.IP(src=ip.src, dst=ip.dst, p=ip.p, id=ip.id, ttl=64, data=payload[off:off + size])
        frag.offset = off // 8  # in 8-byte units
        frag.mf = int(off + size < len(payload))
        out.append(bytes(frag))
    return out


def test_fragmented_udp_invite_is_reassembled(tmp_path: Path) -> None:
    big = invite("0612000001", call_id="big", body=b"a=x-filler:" + b"z" * 3000 + b"\r\n")
    ip = dpkt.ip.IP(udp_ip(big))
    ip.id = 4242
    frags = _fragments(bytes(ip), 1480)
    assert len(frags) == 3
    lost = dpkt.ip.IP(udp_ip(invite("0612000002", call_id="lost", body=b"z" * 3000)))
    lost.id = 7
    frames = [(T0, ether(frags[2])), (T0, ether(frags[0])), (T0, ether(_fragments(bytes(lost), 1480)[0])),
              (T0, ether(frags[1]))]
    trace = read_trace(write(tmp_path / "frag.pcap", frames))
    assert [c.number for c in trace.calls] == ["0612000001"]
    assert trace.stats["ip_fragments"] == 4
    assert any("never completed" in w for w in trace.warnings)
