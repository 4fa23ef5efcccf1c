"""The fake AMI server is only useful if it is faithful: check it against the recording itself."""

from __future__ import annotations

import asyncio

from tests.ami.fake_ami import FakeAmi, Plan
from tests.ami.recording import ALLOWED_UID, END, FIXTURE, bypass, headers, load


async def _read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    async with asyncio.timeout(3):
        return await reader.readexactly(n)


async def test_replays_the_recording_byte_for_byte() -> None:
    rec = load()
    async with FakeAmi(rec) as fake:
        reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
        # The session as recorded: Login (ActionID 1), the calls, Ping (2), Logoff (3).
        writer.write(b"Action: Login\r\nActionID: 1\r\nUsername: dncgw\r\nSecret: s3cret\r\n\r\n")
        got = await _read_exactly(reader, len(rec.banner) + len(rec.login) + sum(map(len, rec.events)))
        writer.write(b"Action: Ping\r\nActionID: 2\r\n\r\n")
        got += await _read_exactly(reader, len(rec.pong))
        writer.write(b"Action: Logoff\r\nActionID: 3\r\n\r\n")
        async with asyncio.timeout(3):
            got += await reader.read()  # Goodbye, then Asterisk closes
        writer.close()
    assert got == FIXTURE.read_bytes()


async def test_answers_with_the_clients_action_ids() -> None:
    rec = load()
    async with FakeAmi(rec, [Plan(events=())]) as fake:
        reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
        await _read_exactly(reader, len(rec.banner))
        writer.write(b"Action: Login\r\nActionID: action/abc/1/7\r\nUsername: u\r\nSecret: s\r\n\r\n")
        async with asyncio.timeout(3):
            login = await reader.readuntil(END)
            writer.write(b"Action: Ping\r\n\r\n")  # no ActionID: Asterisk then writes none
            pong = await reader.readuntil(END)
            writer.write(b"Action: Hangup\r\nActionID: h1\r\nChannel: PJSIP/x-1\r\n\r\n")
            hangup = await reader.readuntil(END)
        writer.close()
    assert login == rec.login.replace(b"ActionID: 1\r\n", b"ActionID: action/abc/1/7\r\n")
    assert pong == rec.pong.replace(b"ActionID: 2\r\n", b"")
    assert hangup == b"Response: Success\r\nActionID: h1\r\nMessage: Channel Hungup\r\n\r\n"
    assert fake.actions("hangup") == [{"action": "Hangup", "actionid": "h1", "channel": "PJSIP/x-1"}]


def test_bypass_stream_is_the_allowed_call_without_screening() -> None:
    rec = load()
    by = bypass(rec)
    assert set(by.events) <= set(rec.events)  # nothing invented: recorded messages, fewer of them
    allowed = [headers(m) for m in by.events if headers(m).get("Uniqueid") == ALLOWED_UID]
    assert not [h for h in allowed if h.get("Variable", "").startswith("DNC_") or h.get("Application") == "AGI"]
    assert [h["Event"] for h in map(headers, by.events)].count("DialBegin") == 1
