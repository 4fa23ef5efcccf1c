"""SIP requests as a proxy (Kamailio, SIPp) writes them, for the tests."""

from __future__ import annotations


def request(method: str = "INVITE", number: str = "0612000001", *, branch: str = "z9hG4bK-1",
            call_id: str = "call-1@agent", cseq: int = 1, campaign: str | None = "legacy", to_tag: str = "",
            via: str = "SIP/2.0/UDP 127.0.0.1:5060", extra: str = "", body: bytes = b"",
            uri: str | None = None, cseq_method: str | None = None, pai: str = "") -> bytes:
    first, *rest = via.split(", ")  # the branch (and rport) go on the top Via
    lines = [
        f"{method} {uri or f'sip:{number}@127.0.0.1:5065'} SIP/2.0",
        "Via: " + ", ".join([f"{first};branch={branch};rport", *rest]),
        "Max-Forwards: 70",
        "From: \"Agent 1001\" <sip:1001@127.0.0.1>;tag=from-1",
        f"To: <sip:{number}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Contact: <sip:1001@127.0.0.1:5060>",
    ]
    if pai:
        lines.append(f"P-Asserted-Identity: <sip:{pai}@127.0.0.1>")
    if campaign is not None:
        lines.append(f"X-DNC-Campaign: {campaign}")
    if extra:
        lines.append(extra)
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def status_of(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def header(data: bytes, name: str) -> list[str]:
    out = []
    for line in data.decode().split("\r\n")[1:]:
        n, _, v = line.partition(":")
        if n.strip().lower() == name.lower():
            out.append(v.strip())
    return out
