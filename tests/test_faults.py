"""The FastAGI errors of both ends are one tree: one base exception, kinds from one enum, the kind first."""

from __future__ import annotations

import pytest

from gateway.agi.protocol import AgiConnection, ProtocolError
from gateway.faults import FastAgiError, FaultKind
from gateway.replay.fastagi import AgiProtocolError, ChannelInfo, run_session


def test_the_gateway_side_raises_a_typed_kind() -> None:
    conn = AgiConnection()
    conn.receive_data(b"agi_network: yes\n")
    conn.receive_data(b"")
    with pytest.raises(FastAgiError) as e:
        conn.next_event()
    assert isinstance(e.value, ProtocolError)
    assert e.value.kind is FaultKind.EOF
    assert str(e.value) == "connection closed before the end of the environment block (17 bytes)"


def test_a_bad_line_is_a_protocol_fault() -> None:
    conn = AgiConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(ProtocolError) as e:
        conn.next_event()
    assert e.value.kind is FaultKind.PROTOCOL


async def test_the_replay_side_raises_the_same_tree() -> None:
    # Port 1 on loopback: nothing listens there (and only root could), so the connection is refused.
    with pytest.raises(FastAgiError) as e:
        await run_session("127.0.0.1", 1, ChannelInfo("agi://x/check", "check", ("1",)), connect_timeout=2.0)
    assert isinstance(e.value, AgiProtocolError)
    assert e.value.kind is FaultKind.UNREACHABLE and "cannot connect to 127.0.0.1:1" in str(e.value)


def test_both_take_the_kind_first() -> None:
    for cls in (ProtocolError, AgiProtocolError):
        err = cls(FaultKind.TIMEOUT, "the message")
        assert (err.kind, str(err)) == (FaultKind.TIMEOUT, "the message")
