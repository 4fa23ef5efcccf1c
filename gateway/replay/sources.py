"""The calls of a trace, whatever its format: capture, SIPp injection CSV or plain CSV.

A call is what a dialplan would have asked the gateway about: the dialled number,
the campaign, the presented caller ID and when it happened. The format is told
by the content, not the file name (a ``.csv`` that is really a pcap still reads).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, tzinfo
from pathlib import Path

from gateway.replay import plaincsv, sipp_csv
from gateway.replay.pcap import CaptureError, Packet, is_capture, read_capture
from gateway.replay.sip import addr_params, addr_uri, uri_user
from gateway.replay.trace import ANONYMOUS, Call, Event, InputError, Trace

__all__ = ["ANONYMOUS", "Call", "Event", "InputError", "Trace", "calls_from_packets", "read_trace"]

def _user(value: str | None) -> str:
    return uri_user(addr_uri(value)) if value else ""


def calls_from_packets(packets: Iterable[Packet], campaign_header: str = "X-Campaign") -> tuple[list[Call], int]:
    """Initial INVITEs (no To tag), one per Call-ID; returns the calls and the duplicates dropped.

    A retransmission and the INVITE resent with credentials after a 401/407 share the
    Call-ID of the first one: same call, counted once, at the time of the first.
    """
    seen: set[str] = set()
    calls: list[Call] = []
    dupes = 0
    for p in packets:
        m = p.message
        if m.method != "INVITE":
            continue
        to = m.header("to") or ""
        if "tag" in addr_params(to):
            continue  # re-INVITE inside a dialog: not a new call
        call_id = m.header("call-id") or f"<no Call-ID, frame {p.index}>"
        if call_id in seen:
            dupes += 1
            continue
        seen.add(call_id)
        number = uri_user(m.uri) or _user(to)
        caller = _user(m.header("from"))
        if caller.lower() in ANONYMOUS:
            caller = _user(m.header("p-asserted-identity"))
        if caller.lower() in ANONYMOUS:
            caller = ""
        campaign = (m.header(campaign_header) or "").strip() if campaign_header else ""
        calls.append(Call(number, campaign, caller, p.ts, call_id, f"frame {p.index}"))
    return calls, dupes


def read_trace(path: Path, *, campaign_header: str = "X-Campaign", timezone: tzinfo = UTC) -> Trace:
    """Read any supported trace; raises InputError with a message for people.

    ``timezone``: how to read a CSV time written without an offset (captures carry UNIX times).
    """
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if not head:
        raise InputError(f"{path}: empty file")
    if is_capture(head):
        try:
            packets, stats = read_capture(path, methods=frozenset({"INVITE"}))
        except CaptureError as e:
            raise InputError(str(e)) from None
        calls, dupes = calls_from_packets(packets, campaign_header)
        counts = {**stats.as_json(), "duplicate_invites": dupes}
        warnings = list(stats.warnings)
        if not calls:
            warnings.append(f"{path}: no initial INVITE found in {stats.frames} frames "
                            f"({stats.sip_messages} SIP messages)")
        kind = "pcapng" if head[:4] == b"\x0a\x0d\x0d\x0a" else "pcap"
        return Trace(tuple(calls), kind, counts, tuple(warnings))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: neither a capture (pcap/pcapng) nor a UTF-8 text file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if sipp_csv.is_sipp_csv(text):
        return sipp_csv.read(text, str(path), timezone)
    return plaincsv.read(text, str(path), timezone)
