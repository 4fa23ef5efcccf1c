"""SIP messages out of a pcap or pcapng capture (dpkt reads the file format).

Link layers: Ethernet (what tshark writes for ``-i lo``), Linux cooked SLL and
SLL2 (``-i any``), raw IP, BSD loopback. IPv4 (fragments reassembled) and IPv6;
SIP over UDP (one message a datagram) and over TCP, reassembled per direction so
that a message split over segments, or several messages in one segment, come out
whole. Not read: SIP over TLS or WebSocket, SCTP, IPv6 fragments.
A truncated or damaged capture gives what could be read plus a warning: a trace
cut short by a full disk still says something about the calls before the cut.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import dpkt

from gateway.replay.sip import SipError, SipMessage, SipStream, looks_like_sip, parse_message

__all__ = ["CaptureError", "CaptureStats", "Packet", "is_capture", "read_capture"]

PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

DLT_NULL, DLT_EN10MB, DLT_RAW, DLT_LOOP, DLT_LINUX_SLL, DLT_LINUX_SLL2 = 0, 1, 101, 108, 113, 276
DLT_IPV4, DLT_IPV6 = 228, 229
RAW_ALIASES = {12, 14}  # DLT_RAW on some BSDs / old libpcap
MAX_TCP_BUFFERED = 1 << 20  # out-of-order bytes kept per direction before giving up on a gap


class CaptureError(Exception):
    """The file cannot be read as a capture at all (exit 2)."""


@dataclass(frozen=True, slots=True)
class Packet:
    """A SIP message and where it was seen."""

    ts: float
    index: int  # 1-based frame number, as Wireshark counts
    transport: str  # "udp" | "tcp"
    src: str
    dst: str
    message: SipMessage


@dataclass
class CaptureStats:
    frames: int = 0
    sip_messages: int = 0
    non_sip: int = 0  # frames that are not IP/UDP/TCP, or whose payload is not SIP
    bad_sip: int = 0  # looked like SIP but did not parse
    tcp_streams: int = 0
    tcp_skipped_bytes: int = 0
    ip_fragments: int = 0
    truncated: int = 0  # frames shorter than their IP length (snap length, or a cut file)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"frames": self.frames, "sip_messages": self.sip_messages, "non_sip": self.non_sip,
                "bad_sip": self.bad_sip, "tcp_streams": self.tcp_streams,
                "tcp_skipped_bytes": self.tcp_skipped_bytes, "ip_fragments": self.ip_fragments,
                "truncated_frames": self.truncated}


def is_capture(head: bytes) -> bool:
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC


def _open_reader(f: BinaryIO, path: Path) -> Any:
    head = f.read(4)
    f.seek(0)
    try:
        if head == PCAPNG_MAGIC:
            return dpkt.pcapng.Reader(f)
        if head in PCAP_MAGICS:
            return dpkt.pcap.Reader(f)
    except (ValueError, dpkt.dpkt.Error, struct.error) as e:
        raise CaptureError(f"{path}: not a readable capture ({e or 'truncated header'})") from None
    raise CaptureError(f"{path}: not a pcap or pcapng capture (magic {head.hex() or 'empty file'})")


def _ip_layer(linktype: int, frame: bytes) -> Any:
    """The dpkt IP or IP6 object of a frame, or None."""
    if linktype == DLT_EN10MB:
        eth = dpkt.ethernet.Ethernet(frame)
        return eth.data
    if linktype == DLT_LINUX_SLL:
        return dpkt.sll.SLL(frame).data
    if linktype == DLT_LINUX_SLL2:
        return dpkt.sll2.SLL2(frame).data
    if linktype in (DLT_NULL, DLT_LOOP):
        return dpkt.loopback.Loopback(frame).data
    if linktype in (DLT_RAW, DLT_IPV4, DLT_IPV6) or linktype in RAW_ALIASES:
        version = frame[0] >> 4 if frame else 0
        if version == 4:
            return dpkt.ip.IP(frame)
        if version == 6:
            return dpkt.ip6.IP6(frame)
    return None


def _addr(raw: bytes) -> str:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return "?"


class _TcpFlow:
    """One direction of a TCP connection: in-order delivery to a SIP stream framer."""

    def __init__(self) -> None:
        self.next_seq: int | None = None
        self.pending: dict[int, tuple[bytes, float]] = {}
        self.stream = SipStream()
        self.gap_reported = False

    def segment(self, seq: int, data: bytes, syn: bool, ts: float) -> list[tuple[float, SipMessage]]:
        if syn:
            self.next_seq = (seq + 1) & 0xFFFFFFFF
            seq = self.next_seq
        if not data:
            return []
        if self.next_seq is None:  # capture started mid-connection: take it from here
            self.next_seq = seq
        out: list[tuple[float, SipMessage]] = []
        delta = (seq - self.next_seq) & 0xFFFFFFFF
        if delta >= 0x80000000:  # before what we have: a retransmission, maybe overlapping new bytes
            overlap = (self.next_seq - seq) & 0xFFFFFFFF
            if overlap >= len(data):
                return []
            data, seq = data[overlap:], self.next_seq
            delta = 0
        if delta:
            if sum(len(d) for d, _ in self.pending.values()) < MAX_TCP_BUFFERED:
                self.pending.setdefault(seq, (data, ts))
            return []
        out += [(ts, m) for m in self.stream.feed(data)]
        self.next_seq = (seq + len(data)) & 0xFFFFFFFF
        while self.pending:
            for pseq in list(self.pending):
                d = (pseq - self.next_seq) & 0xFFFFFFFF
                if d >= 0x80000000 or d == 0:
                    pdata, pts = self.pending.pop(pseq)
                    overlap = (self.next_seq - pseq) & 0xFFFFFFFF
                    if overlap < len(pdata):
                        out += [(pts, m) for m in self.stream.feed(pdata[overlap:])]
                        self.next_seq = (self.next_seq + len(pdata) - overlap) & 0xFFFFFFFF
                    break
            else:
                break
        return out

    def skip_gap(self) -> list[tuple[float, SipMessage]]:
        """A segment never came: jump to the earliest buffered one (the framer resynchronises)."""
        if not self.pending or self.next_seq is None:
            return []
        base = self.next_seq
        first = min(self.pending, key=lambda s: (s - base) & 0xFFFFFFFF)
        data, ts = self.pending.pop(first)
        self.stream.feed(b"\r\n")  # whatever was half-framed is lost; do not glue it to what follows
        self.stream.skipped += self.stream.close()
        self.next_seq = first
        return self.segment(first, data, False, ts)


class _Defrag:
    """IPv4 reassembly (RFC 791): a large INVITE over UDP (video SDP, many codecs) crosses the MTU."""

    MAX_DATAGRAMS = 4096  # incomplete datagrams kept; the oldest go first

    def __init__(self) -> None:
        self._parts: dict[tuple[bytes, bytes, int, int], dict[int, bytes]] = {}
        self._ends: dict[tuple[bytes, bytes, int, int], int] = {}

    @property
    def pending(self) -> int:
        return len(self._parts)

    def add(self, ip: Any) -> Any:
        """The transport layer (dpkt UDP/TCP, or bytes) once every fragment is in, else None."""
        key = (bytes(ip.src), bytes(ip.dst), int(ip.id), int(ip.p))
        parts = self._parts.setdefault(key, {})
        if len(self._parts) > self.MAX_DATAGRAMS:
            oldest = next(iter(self._parts))
            self._parts.pop(oldest)
            self._ends.pop(oldest, None)
        start = int(ip.offset) * 8  # the header counts in 8-byte units
        parts[start] = bytes(ip.data)
        if not ip.mf:
            self._ends[key] = start + len(bytes(ip.data))
        end = self._ends.get(key)
        if end is None:
            return None
        pos, chunks = 0, []
        for off in sorted(parts):
            if off > pos:
                return None  # a hole: more to come
            chunks.append(parts[off][pos - off:])
            pos = max(pos, off + len(parts[off]))
        if pos < end:
            return None
        del self._parts[key], self._ends[key]
        data = b"".join(chunks)[:end]
        try:
            if ip.p == dpkt.ip.IP_PROTO_UDP:
                return dpkt.udp.UDP(data)
            if ip.p == dpkt.ip.IP_PROTO_TCP:
                return dpkt.tcp.TCP(data)
        except (dpkt.dpkt.Error, struct.error):
            return None
        return data


def read_capture(path: Path, *, methods: frozenset[str] | None = None) -> tuple[list[Packet], CaptureStats]:
    """The SIP messages of the capture in time order: all of them, or only requests of ``methods``.

    Filtering on the method skips parsing most UDP datagrams (responses, ACK, BYE): a day of a
    call centre's signalling is mostly not INVITEs.
    """
    stats = CaptureStats()
    packets: list[Packet] = []
    flows: dict[tuple[str, int, str, int], _TcpFlow] = {}
    defrag = _Defrag()
    try:
        f = path.open("rb")
    except OSError as e:
        raise CaptureError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        reader = _open_reader(f, path)
        linktype = int(reader.datalink())
        if linktype not in (DLT_NULL, DLT_EN10MB, DLT_RAW, DLT_LOOP, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_IPV4,
                            DLT_IPV6) and linktype not in RAW_ALIASES:
            raise CaptureError(f"{path}: link type {linktype} not supported "
                               "(Ethernet, Linux cooked SLL/SLL2, raw IP, loopback are)")
        frames = _frames(reader, stats, path)
        prefixes = tuple(m.encode() + b" " for m in methods) if methods is not None else None
        for index, (ts, frame) in enumerate(frames, start=1):
            stats.frames = index
            for transport, src, dst, msg_ts, msg in _decode(linktype, frame, float(ts), stats, flows, defrag,
                                                            prefixes):
                stats.sip_messages += 1
                if methods is None or msg.method in methods:
                    packets.append(Packet(msg_ts, index, transport, src, dst, msg))
    for key, flow in flows.items():
        while flow.pending:
            for msg_ts, msg in flow.skip_gap():
                stats.sip_messages += 1
                if methods is None or msg.method in methods:
                    packets.append(Packet(msg_ts, stats.frames, "tcp", f"{key[0]}:{key[1]}", f"{key[2]}:{key[3]}", msg))
            if not flow.gap_reported:
                stats.warnings.append(f"TCP {key[0]}:{key[1]} -> {key[2]}:{key[3]}: missing segments "
                                      "(not captured): messages around the gap may be lost")
                flow.gap_reported = True
        left = flow.stream.close()
        stats.tcp_skipped_bytes += flow.stream.skipped + left
        stats.bad_sip += len(flow.stream.errors)
        for err in flow.stream.errors[:3]:
            stats.warnings.append(f"TCP {key[0]}:{key[1]} -> {key[2]}:{key[3]}: {err}")
        if left:
            stats.warnings.append(f"TCP {key[0]}:{key[1]} -> {key[2]}:{key[3]}: {left} bytes at the end "
                                  "never made a whole SIP message (capture cut mid-message?)")
    if stats.truncated:
        stats.warnings.append(f"{stats.truncated} frames shorter than their IP length (capture snap length, or "
                              "a file cut short): SIP in them may be incomplete")
    if defrag.pending:
        stats.warnings.append(f"{defrag.pending} fragmented IP datagrams never completed (fragments not "
                              "captured): SIP in them is missing")
    cut = _pcap_cut_at(path)
    if cut is not None:
        stats.warnings.append(f"{path}: capture truncated: file ends inside frame {cut}; kept what came before")
    packets.sort(key=lambda p: p.ts)
    return packets, stats


def _pcap_cut_at(path: Path) -> int | None:
    """The frame a classic pcap file ends inside of, if any (dpkt hands a short last frame over silently)."""
    with path.open("rb") as f:
        head = f.read(24)
        if len(head) < 24 or head[:4] not in PCAP_MAGICS:
            return None
        order = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        index = 0
        while True:
            rec = f.read(16)
            if not rec:
                return None
            index += 1
            if len(rec) < 16:
                return index
            caplen = struct.unpack(order + "I", rec[8:12])[0]
            data = f.read(caplen)
            if len(data) < caplen:
                return index


def _frames(reader: Any, stats: CaptureStats, path: Path) -> Iterator[tuple[float, bytes]]:
    it = iter(reader)
    while True:
        try:
            ts, frame = next(it)
        except StopIteration:
            return
        except (ValueError, dpkt.dpkt.Error, struct.error, OverflowError, MemoryError) as e:
            stats.warnings.append(f"{path}: capture truncated or damaged after frame {stats.frames} "
                                  f"({type(e).__name__}{': ' + str(e) if str(e) else ''}): kept what came before")
            return
        yield ts, frame


def _decode(linktype: int, frame: bytes, ts: float, stats: CaptureStats,
            flows: dict[tuple[str, int, str, int], _TcpFlow], defrag: _Defrag,
            prefixes: tuple[bytes, ...] | None = None) -> list[tuple[str, str, str, float, SipMessage]]:
    try:
        ip = _ip_layer(linktype, frame)
    except (dpkt.dpkt.Error, struct.error, ValueError, IndexError):
        ip = None
    if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
        stats.non_sip += 1
        return []
    l4 = ip.data
    whole = False  # reassembled from IP fragments: lengths were checked on the way
    if isinstance(ip, dpkt.ip.IP) and (ip.mf or ip.offset):
        stats.ip_fragments += 1
        l4 = defrag.add(ip)
        if l4 is None:
            return []
        whole = True
    src_ip, dst_ip = _addr(ip.src), _addr(ip.dst)
    if isinstance(l4, dpkt.udp.UDP):
        payload = bytes(l4.data)
        cut = not whole and l4.ulen > 8 + len(payload)
        if cut:
            stats.truncated += 1
        if not looks_like_sip(payload):
            stats.non_sip += 1
            return []
        if prefixes is not None and not payload[:16].startswith(prefixes):
            stats.sip_messages += 1  # SIP, just not what the caller asked for
            return []
        try:
            msg = parse_message(payload, partial=cut)
        except SipError:
            stats.bad_sip += 1
            return []
        return [("udp", f"{_fmt(src_ip)}:{l4.sport}", f"{_fmt(dst_ip)}:{l4.dport}", ts, msg)]
    if isinstance(l4, dpkt.tcp.TCP):
        key = (src_ip, int(l4.sport), dst_ip, int(l4.dport))
        flow = flows.get(key)
        payload = bytes(l4.data)
        total = ip.len - ip.hl * 4 if isinstance(ip, dpkt.ip.IP) else ip.plen
        if not whole and total - l4.off * 4 > len(payload):
            stats.truncated += 1  # the framer resynchronises on the next start line
        if flow is None:
            if not payload and not (l4.flags & dpkt.tcp.TH_SYN):
                stats.non_sip += 1
                return []
            flow = flows[key] = _TcpFlow()
            stats.tcp_streams += 1
        src, dst = f"{_fmt(src_ip)}:{l4.sport}", f"{_fmt(dst_ip)}:{l4.dport}"
        return [("tcp", src, dst, t, m) for t, m in flow.segment(int(l4.seq), payload,
                                                                 bool(l4.flags & dpkt.tcp.TH_SYN), ts)]
    stats.non_sip += 1
    return []


def _fmt(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip
