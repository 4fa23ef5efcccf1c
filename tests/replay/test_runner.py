from __future__ import annotations

import asyncio
import time

import pytest

from gateway.replay.fastagi import Session
from gateway.replay.runner import Target, replay, result_of, start_offsets
from gateway.replay.sources import Call
from tests.replay.test_fastagi import fake_server, read_env


def test_offsets_follow_the_recorded_gaps() -> None:
    assert start_offsets([100.0, 101.0, 103.0], 1) == [0.0, 1.0, 3.0]
    assert start_offsets([100.0, 101.0, 103.0], 4) == [0.0, 0.25, 0.75]
    assert start_offsets([100.0, 101.0], None) == [0.0, 0.0]  # --fast


def test_offsets_without_times_or_going_backwards() -> None:
    assert start_offsets([None, 10.0, None, 12.0, 11.0], 1) == [0.0, 0.0, 0.0, 2.0, 2.0]
    assert start_offsets([None, None], 1) == [0.0, 0.0]
    with pytest.raises(ValueError):
        start_offsets([1.0], 0)


def _session(**variables: str) -> Session:
    return Session(variables, (), (), 0.001)


def test_result_reads_the_dialplan_variables() -> None:
    call = Call("0612000001", "prospect")
    r = result_of(1, call, _session(DNC_VERDICT="ALLOW", DNC_REASON="opposition_list", DNC_WOULD_BLOCK="1",
                                    DNC_DECISION_ID="x", AGISTATUS="SUCCESS"))
    assert (r.verdict, r.reason, r.would_block, r.blocked, r.error) == ("ALLOW", "opposition_list", True, True, "")
    bad = result_of(1, call, _session(DNC_VERDICT="ALLOW\r"))
    assert bad.verdict == "" and bad.error_kind == "malformed" and "not ALLOW or BLOCK" in bad.error
    none = result_of(1, call, _session(AGISTATUS="SUCCESS"))
    assert none.error == "no DNC_VERDICT set"
    failed = result_of(1, call, Session({"AGISTATUS": "FAILURE"}, ("FAILURE",), ("gateway answered FAILURE",), 0.1))
    assert failed.error_kind == "failure"


def counting_server(state: dict[str, int], delay: float = 0.05):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env = await read_env(reader)
        state["open"] += 1
        state["max"] = max(state["max"], state["open"])
        await asyncio.sleep(delay)
        verdict = "BLOCK" if env["agi_arg_1"].endswith("1") else "ALLOW"
        writer.write(f"SET VARIABLE DNC_VERDICT {verdict}\n".encode())
        await reader.readline()
        state["open"] -= 1
        writer.close()

    return handle


async def test_concurrency_bound_and_fast_pace() -> None:
    state = {"open": 0, "max": 0}
    calls = [Call(f"061200000{i}", "prospect", at=1000.0 + i * 100) for i in range(8)]
    async with fake_server(counting_server(state)) as port:
        results = await replay(calls, Target("127.0.0.1", port), speed=None, concurrency=3)
    assert state["max"] == 3
    assert [r.verdict for r in results] == ["BLOCK" if i == 1 else "ALLOW" for i in range(8)]
    assert all(r.seconds is not None and not r.error for r in results)


async def test_recorded_pace_scaled() -> None:
    state = {"open": 0, "max": 0}
    calls = [Call("0612000002", "p", at=10.0), Call("0612000003", "p", at=11.0), Call("0612000004", "p", at=12.0)]
    async with fake_server(counting_server(state, 0.0)) as port:
        started = time.perf_counter()
        results = await replay(calls, Target("127.0.0.1", port), speed=10, concurrency=5)
        elapsed = time.perf_counter() - started
    assert 0.2 <= elapsed < 1.5  # 2 s of trace at 10x
    assert not any(r.error for r in results)


async def test_unreachable_gateway_stops_the_replay() -> None:
    async with fake_server(counting_server({"open": 0, "max": 0})) as port:
        pass
    calls = [Call(f"061200000{i}", "p", at=float(i)) for i in range(5)]
    results = await replay(calls, Target("127.0.0.1", port), speed=1, concurrency=1)
    assert results[0].error_kind == "unreachable"
    assert {r.error_kind for r in results[1:]} == {"not_replayed"}
