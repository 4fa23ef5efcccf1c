"""The SIP listener over real UDP and TCP sockets, deciding with a real Gateway, SQLite state and audit log."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import pytest

from gateway.audit import AuditLog, AuditReader, AuditRecord, AuditUnavailable
from gateway.config import AuditSection, Config, HostPort, SipCallerId, SipSection
from gateway.metrics import Metrics
from gateway.service import Gateway
from gateway.sip.server import SipServer
from gateway.sip.transactions import State
from tests.sip import messages
from tests.sip.messages import header, status_of

HOST = "127.0.0.1"
ROUTE = "sip:carrier@127.0.0.1:5080"
ALLOWED = "0612000099"  # on no list of the "legacy" campaign (opposition regime)
LISTED = "0612000001"  # on the opposition list


def request(method: str = "INVITE", *, pai: str = "0162000000", **kw: object) -> bytes:
    """A request presenting the campaigns' caller ID in P-Asserted-Identity, as the proxy would."""
    return messages.request(method, pai=pai, **kw)  # type: ignore[arg-type]


class Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.put_nowait(data)


class Client:
    def __init__(self, transport: asyncio.DatagramTransport, proto: Udp) -> None:
        self.transport, self.proto = transport, proto

    def send(self, data: bytes) -> None:
        self.transport.sendto(data)

    async def recv(self, seconds: float = 5.0) -> bytes:
        return await asyncio.wait_for(self.proto.got.get(), seconds)

    async def final(self, data: bytes) -> bytes:
        """Send a request and return its first answer that is not 100 Trying."""
        self.send(data)
        while True:
            resp = await self.recv()
            if status_of(resp) >= 200:
                return resp

    async def silent(self, seconds: float = 0.2) -> bool:
        with contextlib.suppress(TimeoutError):
            await self.recv(seconds)
            return False
        return True


@pytest.fixture
async def audited(sample_config: Config, clock: Callable[[], datetime], tmp_path: Path) -> AsyncIterator[Gateway]:
    log = AuditLog(tmp_path / "audit.db", AuditSection())
    await log.start()
    gw = Gateway(sample_config, audit=log, clock=clock)  # memory:// state: attempts counted in memory
    await gw.start()
    gw.holder.load_all()
    yield gw
    await gw.close()
    await log.close()


@contextlib.asynccontextmanager
async def serving(gateway: Gateway, **sip: object) -> AsyncIterator[tuple[SipServer, Client]]:
    cfg = dataclasses.replace(SipSection(listen=HostPort(HOST, 0), route=ROUTE), **sip)  # type: ignore[arg-type]
    metrics = Metrics(gateway)
    gateway.observers.append(metrics)
    server = SipServer(gateway, cfg, metrics=metrics)
    await server.start()
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(Udp, remote_addr=(HOST, server.port))
    try:
        yield server, Client(transport, proto)
    finally:
        transport.close()
        await server.drain_and_close(1.0)


def records(gateway: Gateway) -> list[dict[str, object]]:
    assert isinstance(gateway.audit, AuditLog)
    with AuditReader(gateway.audit.path) as r:
        return r.query()


async def committed(gateway: Gateway, n: int) -> list[dict[str, object]]:
    """The audit records once ``n`` are committed (a BLOCK's record is written after its answer)."""
    async with asyncio.timeout(5):
        while len(rows := records(gateway)) < n:  # noqa: ASYNC110 (bounded)
            await asyncio.sleep(0.01)
    return rows


async def attempts(gateway: Gateway, number: str) -> int:
    key = gateway.normaliser.parse(number).key
    return len((await gateway.state.history(gateway.professional, key)).stamps)


async def test_an_allowed_call_is_302_to_the_route_audited_and_counted_once(audited: Gateway) -> None:
    async with serving(audited) as (server, udp):
        invite = request(number=ALLOWED)
        resp = await udp.final(invite)
        assert status_of(resp) == 302 and header(resp, "Contact") == [f"<sip:{ALLOWED}@127.0.0.1:5080>"]
        decision_id = header(resp, "X-DNC-Decision-Id")[0]
        # retransmitted twice: the same answer, byte for byte, no second decision
        udp.send(invite)
        udp.send(invite)
        assert await udp.recv() == resp and await udp.recv() == resp
        udp.send(request("ACK", number=ALLOWED, to_tag=header(resp, "To")[0].rpartition("tag=")[2]))
        # the ACK is absorbed: the transaction is confirmed (Timer G stops resending the 302)
        [txn] = server.core.table.by_key.values()
        async with asyncio.timeout(5):
            while txn.state is not State.CONFIRMED:  # noqa: ASYNC110 (bounded)
                await asyncio.sleep(0.01)
        assert [(r["decision_id"], r["verdict"], r["source"]) for r in records(audited)] == [
            (decision_id, "ALLOW", "sip")]
        assert await attempts(audited, ALLOWED) == 1
        assert server.metrics is not None
        # two retransmissions answered (more if the machine was slow enough for Timer G to fire before the ACK)
        assert server.metrics.responses.labels("INVITE", "302", "true")._value.get() >= 2
        assert server.metrics.responses.labels("INVITE", "302", "false")._value.get() == 1


async def test_the_caller_id_is_the_asserted_identity_or_the_campaigns(audited: Gateway) -> None:
    async with serving(audited) as (_s, udp):  # the From user is the agent's extension: the caller-ID rule refuses
        resp = await udp.final(request(number=ALLOWED, pai="", extra=""))
        assert header(resp, "X-DNC-Reason") == ["caller_id"]
    async with serving(audited, caller_id=SipCallerId.CAMPAIGN) as (_s, udp):
        assert status_of(await udp.final(request(number=ALLOWED, pai="", branch="z9hG4bK-c"))) == 302


async def test_a_listed_call_is_603_with_the_reason(audited: Gateway) -> None:
    async with serving(audited) as (_server, udp):
        resp = await udp.final(request(number=LISTED))
        assert status_of(resp) == 603
        assert header(resp, "Reason") == ['Q.850;cause=21;text="dnc:opposition_list"']
        assert header(resp, "X-DNC-Reason") == ["opposition_list"]
        assert (await committed(audited, 1))[0]["reason"] == "opposition_list"
        assert await attempts(audited, LISTED) == 0


async def test_the_campaign_defaults_by_source_address(audited: Gateway) -> None:
    async with serving(audited, campaigns=((ipaddress.ip_network("127.0.0.0/8"), "legacy"),)) as (_s, udp):
        assert status_of(await udp.final(request(number=LISTED, campaign=None))) == 603
        assert (await committed(audited, 1))[0]["campaign"] == "legacy"
    async with serving(audited) as (_s, udp):  # no default: an unknown campaign, refused
        resp = await udp.final(request(number=ALLOWED, campaign=None, branch="z9hG4bK-x"))
        assert header(resp, "X-DNC-Reason") == ["unknown_campaign"]


async def test_an_allow_that_cannot_be_audited_is_503(audited: Gateway) -> None:
    class Broken:
        async def append(self, record: AuditRecord, *, durable: bool) -> None:
            raise AuditUnavailable("disk full")

        def append_nowait(self, record: AuditRecord) -> None:
            pass

        def append_then(self, record: AuditRecord, done: Callable[[AuditUnavailable | None], None]) -> None:
            asyncio.get_running_loop().call_soon(done, AuditUnavailable("disk full"))

    gw = Gateway(audited.config, holder=audited.holder, state=audited.state, audit=Broken(), clock=audited.clock)
    async with serving(gw) as (_s, udp):
        resp = await udp.final(request(number=ALLOWED))
        assert status_of(resp) == 503 and header(resp, "X-DNC-Reason") == ["audit_unavailable"]
        assert status_of(await udp.final(request(number=LISTED, branch="z9hG4bK-2"))) == 603


async def test_options_cancel_and_garbage_over_udp(audited: Gateway) -> None:
    async with serving(audited) as (_s, udp):
        assert status_of(await udp.final(request("OPTIONS"))) == 200
        assert status_of(await udp.final(request("CANCEL", branch="z9hG4bK-zz"))) == 481
        udp.send(b"\x00garbage")
        udp.send(b"SIP/2.0 200 OK\r\n\r\n")
        assert await udp.silent()
        assert status_of(await udp.final(request(number=LISTED))) == 603  # still answering


async def test_tcp_frames_messages_and_closes_on_what_cannot_be_framed(audited: Gateway) -> None:
    async with serving(audited, read_timeout=0.3) as (server, _udp):
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(request(number=LISTED, via="SIP/2.0/TCP 127.0.0.1:5060") + request(
            "OPTIONS", via="SIP/2.0/TCP 127.0.0.1:5060", branch="z9hG4bK-o"))
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert sorted([status_of(first), status_of(second)]) == [200, 603]
        writer.write(b"\r\n\r\n")  # keep-alive ping
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"
        writer.write(b"INVITE sip:1@x SIP/2.0\r\n")  # and never the rest: cut after read_timeout
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        # a message too large closes its connection; the server goes on
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(b"INVITE sip:1@x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert not server.connections or all(c.closed for c in server.connections)


async def test_a_source_not_allowed_gets_nothing(audited: Gateway) -> None:
    async with serving(audited, allow=(ipaddress.ip_network("10.0.0.0/8"),)) as (server, udp):
        udp.send(request(number=ALLOWED))
        assert await udp.silent()
        reader, writer = await asyncio.open_connection(HOST, server.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    assert records(audited) == []


async def test_the_tcp_connection_cap(audited: Gateway) -> None:
    async with serving(audited, max_connections=1) as (server, _udp):
        r1, w1 = await asyncio.open_connection(HOST, server.port)
        r2, w2 = await asyncio.open_connection(HOST, server.port)
        assert await asyncio.wait_for(r2.read(), 5) == b""
        w1.write(request("OPTIONS", via="SIP/2.0/TCP 127.0.0.1:5060"))
        assert status_of(await asyncio.wait_for(r1.readuntil(b"\r\n\r\n"), 5)) == 200
        w1.close()
        w2.close()


async def test_drain_answers_503_and_finishes_the_decisions_in_flight(sample_config: Config,
                                                                    clock: Callable[[], datetime],
                                                                    tmp_path: Path) -> None:
    from tests.agi.test_server import HeldAudit  # an audit log whose commits wait for the test

    log = HeldAudit(tmp_path / "audit.db")
    await log.start()
    gw = Gateway(sample_config, audit=log, clock=clock)
    await gw.start()
    gw.holder.load_all()
    try:
        async with serving(gw) as (server, udp):
            log.go.clear()
            log.taken.clear()
            udp.send(request(number=ALLOWED))  # its ALLOW waits for its durable record
            await asyncio.to_thread(log.taken.wait, 5)
            drain = asyncio.create_task(server.drain_and_close(5.0))
            await asyncio.sleep(0.05)
            options = await udp.final(request("OPTIONS", branch="z9hG4bK-o"))
            assert status_of(options) == 503 and header(options, "X-DNC-Reason") == ["draining"]
            late = await udp.final(request(number="0612000098", branch="z9hG4bK-late"))
            assert status_of(late) == 503 and header(late, "X-DNC-Reason") == ["draining"]
            log.go.set()
            resp = await udp.recv()
            assert status_of(resp) == 302 and header(resp, "Contact") == [f"<sip:{ALLOWED}@127.0.0.1:5080>"]
            await asyncio.wait_for(drain, 5)
    finally:
        log.go.set()
        await gw.close()
        await log.close()
