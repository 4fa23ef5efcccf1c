"""Captures written by the tests: SIP messages wrapped in UDP/TCP, IPv4/IPv6, and the link layers
tshark and tcpdump produce, through dpkt's own pcap and pcapng writers."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dpkt

T0 = 1795418477.0  # 2026-11-23, as the Asterisk recordings


def invite(number: str, *, call_id: str, campaign: str | None = "prospect", caller: str = "0162000000",
           compact: bool = False, to_tag: str = "", uri: str | None = None, pai: str | None = None,
           body: bytes = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                         b"m=audio 6000 RTP/AVP 0\r\n", cseq: int = 1) -> bytes:
    ruri = uri or f"sip:{number}@127.0.0.1:5070"
    tag = f";tag={to_tag}" if to_tag else ""
    h = {"via": "v", "from": "f", "to": "t", "call-id": "i", "contact": "m", "content-type": "c",
         "content-length": "l"} if compact else {}

    def n(name: str, long: str) -> str:
        return h.get(name, long)

    lines = [
        f"INVITE {ruri} SIP/2.0",
        f"{n('via', 'Via')}: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-{call_id}-{cseq}",
        f"{n('from', 'From')}: \"Agent\" <sip:{caller}@127.0.0.1:5060>;tag=a{call_id}",
        f"{n('to', 'To')}: <sip:{number}@127.0.0.1:5070>{tag}",
        f"{n('call-id', 'Call-ID')}: {call_id}",
        f"CSeq: {cseq} INVITE",
        f"{n('contact', 'Contact')}: <sip:agent@127.0.0.1:5060>",
        "Max-Forwards: 70",
    ]
    if campaign is not None:
        lines.append(f"X-Campaign: {campaign}")
    if pai is not None:
        lines.append(f"P-Asserted-Identity: <sip:{pai}@127.0.0.1>")
    lines += [f"{n('content-type', 'Content-Type')}: application/sdp", f"{n('content-length', 'Content-Length')}: "
              f"{len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


def response(code: int, reason: str, call_id: str, *, to_tag: str = "b1", method: str = "INVITE") -> bytes:
    return (f"SIP/2.0 {code} {reason}\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-{call_id}-1\r\n"
            f"From: <sip:agent@127.0.0.1>;tag=a{call_id}\r\nTo: <sip:x@127.0.0.1>;tag={to_tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n").encode()


@dataclass
class Frame:
    ts: float
    data: bytes  # link-layer frame


def _ip(src: str, dst: str, proto: int, l4: dpkt.Packet) -> dpkt.Packet:
    if ":" in src:
        ip6 = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, src), dst=socket.inet_pton(socket.AF_INET6, dst),
                           nxt=proto, hlim=64, data=l4)
        ip6.plen = len(bytes(l4))
        return ip6
    return dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, ttl=64, data=l4)


def udp_ip(payload: bytes, src: str = "127.0.0.1", dst: str = "127.0.0.1", sport: int = 5060,
           dport: int = 5070) -> bytes:
    u = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    u.ulen = 8 + len(payload)
    return bytes(_ip(src, dst, dpkt.ip.IP_PROTO_UDP, u))


def tcp_ip(payload: bytes, seq: int, *, flags: int = dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, src: str = "127.0.0.1",
           dst: str = "127.0.0.1", sport: int = 40000, dport: int = 5060) -> bytes:
    t = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=1, flags=flags, win=65535, data=payload)
    return bytes(_ip(src, dst, dpkt.ip.IP_PROTO_TCP, t))


def ether(ip_bytes: bytes) -> bytes:
    etype = dpkt.ethernet.ETH_TYPE_IP6 if ip_bytes[0] >> 4 == 6 else dpkt.ethernet.ETH_TYPE_IP
    return bytes(dpkt.ethernet.Ethernet(src=b"\x00" * 6, dst=b"\x00" * 6, type=etype, data=ip_bytes))


def sll(ip_bytes: bytes) -> bytes:
    etype = 0x86DD if ip_bytes[0] >> 4 == 6 else 0x0800
    return struct.pack(">HHH8sH", 0, 772, 6, b"\x00" * 8, etype) + ip_bytes


def sll2(ip_bytes: bytes) -> bytes:
    etype = 0x86DD if ip_bytes[0] >> 4 == 6 else 0x0800
    return struct.pack(">HHiHBB8s", etype, 0, 1, 772, 0, 6, b"\x00" * 8) + ip_bytes


def tcp_segments(payload: bytes, sizes: Iterable[int], *, isn: int = 1000, **kw: object) -> list[bytes]:
    """The SYN, then the payload cut at the given sizes (the rest in the last segment)."""
    out = [tcp_ip(b"", isn, flags=dpkt.tcp.TH_SYN, **kw)]  # type: ignore[arg-type]
    pos, seq = 0, isn + 1
    for size in [*sizes, len(payload)]:
        chunk = payload[pos:pos + size]
        if not chunk:
            break
        out.append(tcp_ip(chunk, seq, **kw))  # type: ignore[arg-type]
        pos += len(chunk)
        seq += len(chunk)
    return out


def write(path: Path, frames: Iterable[tuple[float, bytes]], *, linktype: int = dpkt.pcap.DLT_EN10MB,
          ng: bool = False) -> Path:
    with path.open("wb") as f:
        w = dpkt.pcapng.Writer(f, linktype=linktype) if ng else dpkt.pcap.Writer(f, linktype=linktype)
        for ts, frame in frames:
            w.writepkt(frame, ts=ts)
    return path
