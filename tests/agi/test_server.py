"""The FastAGI server over real TCP, with a client that plays Asterisk's side byte for byte.

After every kind of bad input the server must still answer a well-formed call, and leak no task or socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import os
import re
import resource
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.agi.server import AgiServer
from gateway.audit import AuditLog, AuditReader, AuditRecord, AuditUnavailable
from gateway.config import AgiSection, AuditSection, Config, HostPort
from gateway.service import Gateway
from tests.agi.fake_asterisk import CallResult, Captured, call, captured_sessions, env_block, recorded_sessions

HOST = "127.0.0.1"
DECISION_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{22}(?![0-9a-f])")
WELL_FORMED = env_block(args=("0612000001", "legacy"), uniqueid="1795418499.9")


class RecordingMetrics:
    def __init__(self) -> None:
        self.started = 0
        self.finished: list[bool] = []
        self.errors: Counter[str] = Counter()

    def agi_session_started(self) -> None:
        self.started += 1

    def agi_session_finished(self, seconds: float, ok: bool) -> None:
        assert seconds >= 0
        self.finished.append(ok)

    def agi_error(self, kind: str) -> None:
        self.errors[kind] += 1


def open_fds() -> int:
    """Open sockets of this process (from /proc/self/fd; uvloop also opens /dev/null once per loop)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return n




class Harness:
    def __init__(self, gateway: Gateway, **agi: object) -> None:
        cfg = dataclasses.replace(gateway.config.agi, **{"read_timeout": 0.5, **agi})  # type: ignore[arg-type]
        self.metrics = RecordingMetrics()
        self.server = AgiServer(gateway, cfg, metrics=self.metrics)

    @property
    def port(self) -> int:
        return self.server.port

    async def call(self, env: bytes = WELL_FORMED, **kw: object) -> CallResult:
        return await call(HOST, self.port, env, **kw)  # type: ignore[arg-type]

    async def assert_still_answers(self) -> None:
        r = await self.call()
        assert r.variables["DNC_VERDICT"] == "BLOCK" and r.variables["DNC_REASON"] == "opposition_list"

    async def settle(self) -> None:
        """Wait until every session has ended (bounded)."""
        async with asyncio.timeout(5):
            while self.server.sessions:  # noqa: ASYNC110 (polls the server from outside, bounded)
                await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def serving(gateway: Gateway, **agi: object) -> AsyncIterator[Harness]:
    """A started server; on exit: drained, and no task or fd left behind."""
    tasks_before = len(asyncio.all_tasks())
    fds_before = open_fds()
    h = Harness(gateway, **agi)
    await h.server.start()
    try:
        yield h
        await h.settle()
        assert len(asyncio.all_tasks()) == tasks_before, "a session task outlived its connection"
    finally:
        await h.server.drain_and_close(1.0)
    for _ in range(3):  # let transports finish closing (uvloop closes on a later iteration)
        await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == tasks_before
    assert open_fds() == fds_before, "socket leaked"


async def raw_exchange(port: int, data: bytes, *, read: bool = True, close_write: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            await writer.drain()
            if close_write:
                writer.write_eof()
        if not read:
            return b""
        try:
            async with asyncio.timeout(5):
                return await reader.read()
        except ConnectionError:
            return b"<reset>"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# -- well-formed calls --------------------------------------------------------------------------------------------

async def test_replays_the_recorded_sessions(gateway: Gateway) -> None:
    async with serving(gateway, answer="set_variable") as h:  # one command per variable, as recorded
        first, second = recorded_sessions()
        r1 = await h.call(first.env)  # 0612000001, campaign prospect (consent regime on FIXED_NOW)
        assert r1.commands[-1] == 'SET VARIABLE DNC_VERDICT "BLOCK"'
        assert [c.split()[2] for c in r1.commands] == ["DNC_REASON", "DNC_DECISION_ID", "DNC_WOULD_BLOCK",
                                                      "DNC_VERDICT"]
        assert r1.variables["DNC_REASON"] == "no_consent" and r1.variables["DNC_WOULD_BLOCK"] == "1"
        assert len(r1.variables["DNC_DECISION_ID"]) == 22 and r1.closed_by_server
        # The second recording: the channel hangs up while the AGI runs; HANGUP comes before a reply.
        r2 = await h.call(second.env, hangup_before_reply=2)
        assert r2.variables["DNC_VERDICT"] == "ALLOW" and r2.variables["DNC_REASON"] == ""
        assert r2.variables["DNC_WOULD_BLOCK"] == "0"
        await h.settle()
        assert h.metrics.finished == [True, True] and h.metrics.errors["hangup"] == 1


async def test_decision_is_audited_with_channel_and_uniqueid(gateway: Gateway) -> None:
    seen = []

    class Obs:
        def decided(self, outcome: object, seconds: float) -> None:
            seen.append(outcome)

    gateway.observers.append(Obs())
    async with serving(gateway) as h:
        r = await h.call(env_block(args=("0612000001", "legacy"), channel="PJSIP/agent7-0000002a",
                                   uniqueid="1795418500.42"))
    rec = seen[0].record  # type: ignore[attr-defined]
    assert (rec.channel, rec.uniqueid, rec.source) == ("PJSIP/agent7-0000002a", "1795418500.42", "agi")
    assert r.variables["DNC_DECISION_ID"] == seen[0].decision_id  # type: ignore[attr-defined]


async def test_route_with_query_string_and_values_from_the_query(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        r = await h.call(env_block(script="check?src=pbx1", args=("0612000001", "legacy")))
        assert r.variables["DNC_REASON"] == "opposition_list"
        r = await h.call(env_block(script="check?number=0612000200&campaign=legacy"))
        assert r.variables["DNC_REASON"] == "internal_dnc" and not any(c.startswith("GET") for c in r.commands)
        r = await h.call(env_block(script="/CHECK/", args=("0612000001", "legacy")))
        assert r.variables["DNC_REASON"] == "opposition_list"


async def test_values_read_back_from_channel_variables(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        r = await h.call(env_block(), variables={"DNC_NUMBER": "0612000200", "DNC_CAMPAIGN": "legacy"})
        assert r.commands[:3] == ["GET VARIABLE DNC_NUMBER", "GET VARIABLE DNC_CAMPAIGN",
                                  "GET VARIABLE DNC_CALLER_ID"]
        assert r.variables["DNC_VERDICT"] == "BLOCK" and r.variables["DNC_REASON"] == "internal_dnc"
        # A HANGUP in front of the first GET's reply must not shift the values read afterwards.
        r = await h.call(env_block(), variables={"DNC_NUMBER": "0612000200", "DNC_CAMPAIGN": "legacy"},
                         hangup_before_reply=1)
        assert r.variables["DNC_REASON"] == "internal_dnc"
        # Nothing at all: an invalid number, refused.
        r = await h.call(env_block())
        assert r.variables["DNC_VERDICT"] == "BLOCK" and r.variables["DNC_REASON"] == "invalid_number"


async def test_caller_id_argument(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        r = await h.call(env_block(args=("0612000050", "prospect")))
        assert r.variables["DNC_VERDICT"] == "ALLOW"
        r = await h.call(env_block(args=("0612000049", "prospect", "0999999999")))
        assert r.variables["DNC_REASON"] == "caller_id"


async def test_monitor_mode_sets_would_block(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        r = await h.call(env_block(args=("0612000200", "survey")))
        assert r.variables["DNC_VERDICT"] == "ALLOW" and r.variables["DNC_WOULD_BLOCK"] == "1"


async def test_answer_mset_sets_every_variable_in_one_round_trip(gateway: Gateway) -> None:
    async with serving(gateway, answer="mset") as h:
        r = await h.call(env_block(args=("0612000001", "legacy")))
        assert r.commands == [r.commands[0]] and r.commands[0].startswith('EXEC MSet "DNC_REASON=')
        assert (r.variables["DNC_VERDICT"], r.variables["DNC_REASON"], r.variables["DNC_WOULD_BLOCK"]) == (
            "BLOCK", "opposition_list", "1")
        assert len(r.variables["DNC_DECISION_ID"]) == 22
        r = await h.call(env_block(args=("0612000009", "prospect")))
        assert (r.variables["DNC_VERDICT"], r.variables["DNC_REASON"]) == ("ALLOW", "")
        # a single variable (refusal, opt-out) still goes by SET VARIABLE
        r = await h.call(env_block(script="optout", args=("0612000050",)))
        assert r.commands == ['SET VARIABLE DNC_RESULT "OK"'] and r.variables == {"DNC_RESULT": "OK"}


async def test_refusal_and_optout_routes(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        r = await h.call(env_block(script="optout", args=("0612000050",)))
        assert r.variables == {"DNC_RESULT": "OK"}
        r = await h.call(env_block(args=("0612000050", "prospect")))
        assert r.variables["DNC_REASON"] == "internal_dnc"  # effective at once
        r = await h.call(env_block(script="refusal"), variables={"DNC_NUMBER": "0612000020"})
        assert r.variables["DNC_RESULT"] == "OK"
        r = await h.call(env_block(args=("0612000020", "legacy")))
        assert r.variables["DNC_REASON"] == "refusal_cooldown"
        r = await h.call(env_block(script="refusal", args=("not a number",)))
        assert r.variables["DNC_RESULT"] == "INVALID"


async def test_unknown_route_fails_closed(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        r = await h.call(env_block(script="chekc", args=("0612000050", "prospect")))
        assert r.variables["DNC_VERDICT"] == "BLOCK" and r.variables["DNC_REASON"] == "unknown_route"
        assert h.metrics.errors["unknown_route"] == 1


@pytest.mark.parametrize("when", ["at once", "after waiting"])
async def test_internal_error_answers_failure(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    async def later() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    def broken(*a: object, **kw: object) -> object:
        if when == "at once":
            raise RuntimeError("boom")
        return later()

    async with serving(gateway) as h:
        monkeypatch.setattr(gateway, "check_now", broken)
        r = await h.call()
        assert r.agistatus == "FAILURE" and "DNC_VERDICT" not in r.variables
        monkeypatch.undo()
        await h.assert_still_answers()


@pytest.mark.parametrize("session", captured_sessions(), ids=lambda s: s.label)
async def test_sessions_captured_with_asterisk_replay_byte_for_byte(gateway: Gateway, session: Captured) -> None:
    """Asterisk 23.4.1's side of sessions captured against this gateway, segment by segment: the same answers.

    Only the decision ids differ (they are new for every decision).
    """
    async with serving(gateway, answer=session.answer) as h:
        reader, writer = await asyncio.open_connection(HOST, h.port)
        try:
            for who, data in session.segments:
                if who == "A" and data not in (b"FIN", b"RST"):
                    with contextlib.suppress(ConnectionError):
                        writer.write(data)
                        await writer.drain()
                elif who == "G" and data == b"FIN":
                    assert await asyncio.wait_for(reader.read(), 2) == b""
                elif who == "G" and data != b"RST":
                    got = await asyncio.wait_for(reader.readline(), 2)
                    assert DECISION_ID.sub("<id>", got.decode()) == DECISION_ID.sub("<id>", data.decode())
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await h.settle()
        assert h.metrics.finished == [True] and not h.metrics.errors


# -- bad input -------------------------------------------------------------------------------------------------------

async def test_client_closes_before_the_blank_line(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        for cut in (0, 1, 40, len(WELL_FORMED) - 1):
            assert await raw_exchange(h.port, WELL_FORMED[:cut], close_write=True) == b""
        await h.settle()
        assert h.metrics.errors["eof"] == 4
        await h.assert_still_answers()


async def test_one_mebibyte_header(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        started = time.perf_counter()
        out = await raw_exchange(h.port, b"agi_network: yes\nagi_x: " + b"A" * (1 << 20))
        assert out in (b"", b"<reset>") and time.perf_counter() - started < 2
        await h.settle()
        assert h.metrics.errors["header_too_large"] == 1
        await h.assert_still_answers()


async def test_slowloris_is_cut_at_the_read_timeout(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        reader, writer = await asyncio.open_connection(HOST, h.port)
        started = time.perf_counter()
        closed_after = None
        for byte in WELL_FORMED[:-1]:  # one byte every 20 ms: each read is quick, the whole never ends
            try:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.02)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.001):
                        if await reader.read(1) == b"":
                            raise ConnectionResetError
            except ConnectionError:
                closed_after = time.perf_counter() - started
                break
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        assert closed_after is not None and 0.45 <= closed_after < 1.5  # read_timeout = 0.5 s for the whole block
        await h.settle()
        assert h.metrics.errors["timeout"] == 1
        await h.assert_still_answers()


async def test_silent_client_and_unanswered_command_time_out(gateway: Gateway) -> None:
    async with serving(gateway, answer="set_variable") as h:
        reader, writer = await asyncio.open_connection(HOST, h.port)
        writer.write(WELL_FORMED)
        async with asyncio.timeout(3):
            first = await reader.readline()
            assert first.startswith(b"SET VARIABLE DNC_REASON")
            assert await reader.read() == b""  # never answered: the server gives up after read_timeout
        writer.close()
        silent = await raw_exchange(h.port, b"")
        assert silent == b""
        await h.settle()
        assert h.metrics.errors["timeout"] == 2
        await h.assert_still_answers()


async def test_non_utf8_bytes(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        latin1 = WELL_FORMED.replace(b"agi_calleridname: sipp", b"agi_calleridname: Ren\xe9 \xff\xfe")
        r = await h.call(latin1)
        assert r.variables["DNC_REASON"] == "opposition_list"
        garbled = env_block(args=("06120000\xff", "legacy")).replace("\xff".encode(), b"\xff")
        r = await h.call(garbled)
        assert r.variables["DNC_VERDICT"] == "BLOCK" and r.variables["DNC_REASON"] == "invalid_number"
        await h.assert_still_answers()


@pytest.mark.parametrize("junk", [b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\n\n",
                                  b"\n\n"])
async def test_not_fastagi_at_all(gateway: Gateway, junk: bytes) -> None:
    async with serving(gateway) as h:
        assert await raw_exchange(h.port, junk) in (b"", b"<reset>")
        await h.settle()
        assert h.metrics.errors["protocol"] == 1
        await h.assert_still_answers()


async def test_garbage_instead_of_a_reply(gateway: Gateway) -> None:
    async with serving(gateway) as h:
        reader, writer = await asyncio.open_connection(HOST, h.port)
        writer.write(WELL_FORMED)
        await reader.readline()
        writer.write(b"what?\n")
        async with asyncio.timeout(3):
            assert await reader.read() == b""
        writer.close()
        await h.settle()
        assert h.metrics.errors["protocol"] == 1
        await h.assert_still_answers()


async def test_peer_not_allowed(gateway: Gateway) -> None:
    nets = (ipaddress.ip_network("10.0.0.0/8"),)
    async with serving(gateway, allow=nets) as h:
        started = time.perf_counter()
        assert await raw_exchange(h.port, WELL_FORMED) in (b"", b"<reset>")
        assert time.perf_counter() - started < 0.4  # closed at once, not at the read timeout
        assert h.metrics.errors["not_allowed"] == 1 and h.metrics.started == 0
    async with serving(gateway, allow=(ipaddress.ip_network("::ffff:127.0.0.0/104"),
                                       ipaddress.ip_network("127.0.0.1/32"))) as h:
        await h.assert_still_answers()


async def test_over_capacity_answers_failure_at_once(gateway: Gateway) -> None:
    async with serving(gateway, max_sessions=2) as h:
        holders = [await asyncio.open_connection(HOST, h.port) for _ in range(2)]
        for _, w in holders:
            w.write(WELL_FORMED[:50])  # two sessions in flight, stuck in their env block
        await asyncio.sleep(0.02)
        started = time.perf_counter()
        r = await h.call()
        assert r.agistatus == "FAILURE" and not r.variables and time.perf_counter() - started < 0.3
        assert h.metrics.errors["overload"] == 1
        for _, w in holders:
            w.write(WELL_FORMED[50:])
        for rd, w in holders:
            async with asyncio.timeout(3):
                while await rd.readline():
                    w.write(b"200 result=1\n")
            w.close()
        await h.settle()
        await h.assert_still_answers()


async def test_five_thousand_concurrent_connections(gateway: Gateway) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 12_000
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"needs {need} file descriptors, hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    try:
        async with serving(gateway, max_sessions=6000, read_timeout=10.0) as h:
            started = time.perf_counter()
            envs = [env_block(args=(f"06120{i:05d}", "legacy"), uniqueid=f"1795418500.{i}") for i in range(5000)]
            results = await asyncio.gather(*(h.call(e, read_timeout=20.0) for e in envs), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            assert not errors, f"{len(errors)} calls failed, first: {errors[0]!r}"
            verdicts = Counter(r.variables.get("DNC_VERDICT") for r in results if isinstance(r, CallResult))
            assert sum(verdicts.values()) == 5000 and None not in verdicts
            assert time.perf_counter() - started < 30
            await h.settle()
            assert h.metrics.finished.count(True) == 5000
            await h.assert_still_answers()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- drain ----------------------------------------------------------------------------------------------------------

async def test_drain_lets_a_session_in_flight_finish_and_refuses_new_ones(gateway: Gateway) -> None:
    tasks_before = len(asyncio.all_tasks())
    h = Harness(gateway, answer="set_variable")  # several round trips: the drain waits through them
    await h.server.start()
    port = h.port
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(WELL_FORMED)
    first = await reader.readline()
    drain = asyncio.create_task(h.server.drain_and_close(3.0))
    await asyncio.sleep(0.05)
    assert not drain.done()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(HOST, port)
    variables: dict[str, str] = {}
    line = first
    async with asyncio.timeout(3):
        while line:
            name, value = line.decode().split(" ", 3)[2:]
            variables[name] = value.strip().strip('"')
            writer.write(b"200 result=1\n")
            line = await reader.readline()
    assert variables["DNC_VERDICT"] == "BLOCK"
    await asyncio.wait_for(drain, 3)
    writer.close()
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == tasks_before
    assert h.metrics.finished == [True]


async def test_drain_timeout_cuts_stuck_sessions(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    fds = open_fds()
    h = Harness(gateway, read_timeout=30.0)
    await h.server.start()
    reader, writer = await asyncio.open_connection(HOST, h.port)
    writer.write(WELL_FORMED)
    await reader.readline()  # then never answer
    started = time.perf_counter()
    await h.server.drain_and_close(0.2)
    assert 0.15 < time.perf_counter() - started < 1.0
    async with asyncio.timeout(2):
        assert await reader.read() == b""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    await asyncio.sleep(0)
    assert not h.server.sessions and open_fds() == fds
    assert h.metrics.finished == [False]
    assert "FastAGI: 1 sessions still open after 0.2s, closing them" in caplog.messages


# -- an audited ALLOW: answered from the audit log's commit, without a task ----------------------------------------

ALLOWED = env_block(args=("0612000009", "prospect"))


class HeldAudit(AuditLog):
    """An AuditLog whose commits wait until the test lets them go (``go.set()``)."""

    def __init__(self, path: os.PathLike[str]) -> None:
        super().__init__(path, AuditSection())  # type: ignore[arg-type]
        self.go = threading.Event()
        self.taken = threading.Event()

    def _commit(self, conn: Any, group: Any) -> bool:
        self.taken.set()
        self.go.wait(10)
        return bool(super()._commit(conn, group))


@pytest.fixture
async def audited(sample_config: Config, clock: Callable[[], datetime], tmp_path: Path) -> AsyncIterator[Gateway]:
    log = HeldAudit(tmp_path / "audit.db")
    log.go.set()
    await log.start()
    gw = Gateway(sample_config, audit=log, clock=clock)
    await gw.start()
    gw.holder.load_all()
    yield gw
    await gw.close()
    log.go.set()
    await log.close()


def _stored(gateway: Gateway) -> dict[str, str]:
    assert isinstance(gateway.audit, AuditLog)
    with AuditReader(gateway.audit.path) as r:
        return {d["decision_id"]: d["verdict"] for d in r.query(limit=1000)}


async def test_an_audited_allow_is_answered_from_its_commit_without_a_task(audited: Gateway,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[object] = []
    async with serving(audited) as h:
        real = h.server.loop.create_task
        monkeypatch.setattr(h.server.loop, "create_task", lambda coro, **kw: created.append(
            coro.__qualname__) or real(coro, **kw))
        r = await h.call(ALLOWED)
        # Durable before it was answered: the record is in the database when the answer has come.
        assert r.variables["DNC_VERDICT"] == "ALLOW" and _stored(audited)[r.variables["DNC_DECISION_ID"]] == "ALLOW"
        b = await h.call()
        assert b.variables["DNC_REASON"] == "opposition_list"
        await h.settle()
        assert h.metrics.finished == [True, True]
    # (asyncio's own accept tasks aside: the selector loop makes one per accepted connection)
    assert [c for c in created if c.startswith("_Connection")] == [], "a session created a task"


async def test_an_allow_whose_record_cannot_be_written_is_refused(gateway: Gateway) -> None:
    class Broken:
        """An audit sink that takes the record and then reports it lost (a failed commit)."""

        async def append(self, record: AuditRecord, *, durable: bool) -> None:
            raise AuditUnavailable("disk full")

        def append_nowait(self, record: AuditRecord) -> None:
            pass

        def append_then(self, record: AuditRecord, done: Callable[[AuditUnavailable | None], None]) -> None:
            asyncio.get_running_loop().call_soon(done, AuditUnavailable("disk full"))

    gw = Gateway(gateway.config, holder=gateway.holder, state=gateway.state, audit=Broken(), clock=gateway.clock)
    async with serving(gw) as h:
        r = await h.call(ALLOWED)
        assert (r.variables["DNC_VERDICT"], r.variables["DNC_REASON"]) == ("BLOCK", "audit_unavailable")
        await h.assert_still_answers()


async def test_drain_gives_up_on_a_session_waiting_for_its_commit(audited: Gateway) -> None:
    log = audited.audit
    assert isinstance(log, HeldAudit)
    tasks_before = len(asyncio.all_tasks())
    h = Harness(audited)
    await h.server.start()
    reader, writer = await asyncio.open_connection(HOST, h.port)
    log.go.clear()
    log.taken.clear()
    writer.write(ALLOWED)
    await asyncio.to_thread(log.taken.wait, 5)  # its commit is held: the session waits for it
    await h.server.drain_and_close(0.2)
    async with asyncio.timeout(2):
        assert await reader.read() == b""  # cut without an answer, as a session awaiting its task was
    assert not h.server.sessions and h.metrics.finished == [False]
    log.go.set()  # the commit ends after the drain: its callback finds the session gone and writes nothing
    async with asyncio.timeout(5):
        while not _stored(audited):  # noqa: ASYNC110 (bounded)
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    assert len(asyncio.all_tasks()) == tasks_before and h.metrics.finished == [False]


def test_config_defaults_are_sane() -> None:
    cfg = AgiSection()
    assert cfg.listen == HostPort("127.0.0.1", 4573) and cfg.read_timeout > 0 and cfg.header_limit >= 4096


def test_under_uvloop(sample_config: Config, clock: Callable[[], datetime]) -> None:
    """app.py serves with uvloop when installed; its transports are not asyncio.Transport subclasses."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        gw = Gateway(sample_config, clock=clock)
        await gw.start()
        gw.holder.load_all()
        async with serving(gw, max_sessions=1) as h:
            await h.assert_still_answers()
            reader, writer = await asyncio.open_connection(HOST, h.port)
            writer.write(WELL_FORMED[:30])  # holds the only session
            await asyncio.sleep(0.02)
            r = await h.call()
            assert r.agistatus == "FAILURE"
            writer.write(WELL_FORMED[30:])
            async with asyncio.timeout(3):
                while await reader.readline():
                    writer.write(b"200 result=1\n")
            writer.close()
            await h.settle()
            await h.assert_still_answers()
        await gw.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def test_drain_also_closes_connections_answered_failure(gateway: Gateway) -> None:
    fds = open_fds()
    h = Harness(gateway, max_sessions=1, read_timeout=30.0)
    await h.server.start()
    held = await asyncio.open_connection(HOST, h.port)
    held[1].write(WELL_FORMED[:10])
    await asyncio.sleep(0.02)
    refused = await asyncio.open_connection(HOST, h.port)  # never closes its side
    async with asyncio.timeout(2):
        assert await refused[0].readline() == b"FAILURE\n"
    assert len(h.server.refused) == 1
    await h.server.drain_and_close(0.1)
    await asyncio.sleep(0.01)
    assert not h.server.refused and not h.server.sessions
    for _, w in (held, refused):
        w.close()
        with contextlib.suppress(OSError):
            await w.wait_closed()
    assert open_fds() == fds


def test_log_lines_mask_phone_numbers() -> None:
    from gateway.agi.server import _redact

    assert _redact("environment line 3 is not 'agi_name: value': 'agi_arg_1 0612345678'") == \
        "environment line 3 is not 'agi_name: value': 'agi_arg_1 ********78'"
    assert _redact("no reply within 2s (set)") == "no reply within 2s (set)"
