"""The live board (pure) and its fan-out: counts per minute, masked numbers only, bounded per-client queues."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from gateway.config import Config
from gateway.service import Gateway, Outcome
from gateway.web.live import SENT_MAX, Board, LiveHub, minute_of, sse_event
from tests.conftest import FIXED_NOW


async def outcomes(config: Config, calls: list[tuple[str, str, datetime]], source: str = "agi") -> list[Outcome]:
    gw = Gateway(config, clock=lambda: FIXED_NOW)
    await gw.start()
    gw.holder.load_all()
    out = [await gw.check(n, c, now=at, source=source) for n, c, at in calls]
    await gw.close()
    return out


def board(config: Config) -> Board:
    return Board(frozenset(config.campaigns))


async def test_board_counts_blocks_per_minute_by_campaign_and_reason(sample_config: Config) -> None:
    t0 = FIXED_NOW
    b = board(sample_config)
    for o in await outcomes(sample_config, [
        ("0612000010", "prospect", t0),  # allowed
        ("0612000001", "legacy", t0),  # opposition
        ("0612000002", "legacy", t0 + timedelta(seconds=30)),
        ("0612000200", "survey", t0 + timedelta(minutes=1)),  # monitor: would block
        ("0612000003", "nope", t0 + timedelta(minutes=1)),  # unknown campaign
    ]):
        b.add(o)
    snap = b.snapshot()
    assert snap["totals"] == {"decisions": 5, "allowed": 1, "blocked": 3, "would_block": 1, "undated_consent": 1}
    m0, m1 = minute_of(t0.timestamp()), minute_of(t0.timestamp() + 60)
    assert snap["buckets"] == {
        str(m0): [["legacy", "opposition_list", False, 2]],
        str(m1): [["survey", "internal_dnc", True, 1], ["unknown", "unknown_campaign", False, 1]],
    }
    assert [i["number"] for i in snap["latest"]] == ["+3361•••••03", "+3361•••••00", "+3361•••••02", "+3361•••••01"]
    assert all("12000" not in json.dumps(i) for i in snap["latest"])
    assert snap["latest"][1]["would_block"] is True and snap["latest"][1]["mode"] == "monitor"


async def test_drain_gives_what_changed_once(sample_config: Config) -> None:
    b = board(sample_config)
    assert b.drain() is None
    first, second = await outcomes(sample_config, [("0612000001", "legacy", FIXED_NOW),
                                                   ("0612000002", "legacy", FIXED_NOW)])
    b.add(first)
    d = b.drain()
    assert d is not None and d["totals"]["blocked"] == 1 and len(d["latest"]) == 1
    assert b.drain() is None
    b.add(second)
    d = b.drain()
    assert d is not None
    assert d["buckets"][str(minute_of(FIXED_NOW.timestamp()))] == [["legacy", "opposition_list", False, 2]]
    assert [i["id"] for i in d["latest"]] == [second.decision_id]


async def test_window_and_latest_are_bounded(sample_config: Config) -> None:
    b = Board(frozenset(sample_config.campaigns), window=60, latest_size=5)
    calls = [("0612000001", "legacy", FIXED_NOW + timedelta(minutes=i)) for i in range(70)]
    for o in await outcomes(sample_config, calls):
        b.add(o)
    assert len(b.minutes) == 60
    assert min(b.minutes) == minute_of((FIXED_NOW + timedelta(minutes=10)).timestamp())
    assert len(b.latest) == 5
    assert len(b.drain()["latest"]) == 5  # type: ignore[index]


@pytest.mark.parametrize("source", ["api", "dry_run"])  # /api/check; FastAGI's dryrun route (replay's default)
async def test_dry_runs_are_not_calls(sample_config: Config, source: str) -> None:
    b = board(sample_config)
    for o in await outcomes(sample_config, [("0612000001", "legacy", FIXED_NOW)], source=source):
        b.add(o)
    assert b.snapshot()["totals"]["decisions"] == 0
    assert b.drain() is None


async def test_latest_blocks_show_the_campaign_name_the_dialplan_sent(sample_config: Config) -> None:
    """Issue 15 #9: counts stay under "unknown" (bounded); the latest blocks say which name to fix in the dialplan."""
    b = board(sample_config)
    sent = ["Prospekt", "promo 0612345678\n" + "x" * 80, "legacy"]
    for o in await outcomes(sample_config, [(f"06120000{i:02d}", c, FIXED_NOW) for i, c in enumerate(sent)]):
        b.add(o)
    latest = {item["number"]: item for item in b.snapshot()["latest"]}
    first, second, known = (latest[f"+3361•••••{i:02d}"] for i in range(3))
    assert (first["campaign"], first["campaign_sent"]) == ("unknown", "Prospekt")
    assert second["campaign"] == "unknown"
    assert second["campaign_sent"].startswith("promo 0612••••78?xxx") and len(second["campaign_sent"]) == SENT_MAX
    assert second["campaign_sent"].endswith("…")
    assert "campaign_sent" not in known
    keys = {tuple(row[:2]) for rows in b.snapshot()["buckets"].values() for row in rows}
    assert {c for c, _ in keys} == {"unknown", "legacy"}  # what is counted stays bounded


def test_sse_event_is_one_data_line() -> None:
    raw = sse_event("tick", {"a": "line\nbreak", "n": 1})
    assert raw.startswith(b"event: tick\ndata: {") and raw.endswith(b"}\n\n")
    assert raw.count(b"\n") == 3


async def test_hub_fans_out_and_drops_slow_clients(sample_config: Config) -> None:
    clock: Callable[[], datetime] = lambda: FIXED_NOW  # noqa: E731
    status = {"lists": []}
    hub = LiveHub(board(sample_config), lambda: dict(status), clock, interval=0.01, status_every=0.01, queue_size=3,
                  max_clients=2)
    fast, slow = hub.subscribe(), hub.subscribe()
    assert fast is not None and slow is not None
    assert hub.subscribe() is None  # max_clients
    await hub.start()
    [o] = await outcomes(sample_config, [("0612000001", "legacy", FIXED_NOW)])
    got: list[bytes] = []

    async def read_fast() -> None:
        while True:
            item = await fast.queue.get()
            if item is None:
                return
            got.append(item)

    reader = asyncio.create_task(read_fast())
    for _ in range(20):  # the slow client never reads: its queue of 3 fills up and it is dropped
        hub.decided(o, 0.0)
        await asyncio.sleep(0.02)
        if slow not in hub.clients:
            break
    assert slow not in hub.clients and slow.closed and hub.dropped == 1
    assert slow.queue.get_nowait() is None  # its handler wakes up and ends
    assert fast in hub.clients
    await asyncio.wait_for(_until(lambda: any(b.startswith(b"event: tick") for b in got)), 2)
    assert any(b.startswith(b"event: status") for b in got)
    status["lists"] = [{"name": "x"}]  # a change: broadcast again; no change: nothing
    await asyncio.wait_for(_until(lambda: sum(b.startswith(b"event: status") for b in got) == 2), 2)
    await hub.close()
    await asyncio.wait_for(reader, 1)
    assert not hub.clients


async def _until(cond: Callable[[], bool]) -> None:
    # Polling is the point here: the condition is on data another task appends to.
    while not cond():  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def test_board_follows_a_reload_of_the_campaigns(sample_config: Config) -> None:
    t0 = FIXED_NOW
    b = board(sample_config)
    legacy, prospect, autumn = await outcomes(sample_config, [
        ("0612000001", "legacy", t0), ("0612000200", "prospect", t0), ("0612000002", "autumn", t0)])
    for o in (legacy, prospect, autumn):
        b.add(o)
    m0 = str(minute_of(t0.timestamp()))
    before = b.snapshot()
    assert {row[0] for row in before["buckets"][m0]} == {"legacy", "prospect", "unknown"}

    # autumn added, legacy removed: legacy's block stays counted, under unknown like any unconfigured name
    assert b.reconfigure(frozenset({"prospect", "survey", "autumn"})) is True
    snap = b.snapshot()
    assert snap["totals"] == before["totals"]
    assert snap["buckets"][m0] == [["prospect", "no_consent", False, 1], ["unknown", "opposition_list", False, 1],
                                   ["unknown", "unknown_campaign", False, 1]]
    assert [i["campaign"] for i in snap["latest"]] == ["unknown", "prospect", "unknown"]
    assert [i["campaign"] for i in b.drain()["latest"]] == ["unknown", "prospect", "unknown"]  # type: ignore[index]
    # Later calls: the added campaign shows under its name, the removed one under unknown.
    b.add(legacy)
    b.add(autumn)
    assert [i["campaign"] for i in b.snapshot()["latest"][:2]] == ["autumn", "unknown"]
    # Nothing already shown changes: no summary needed.
    assert b.reconfigure(frozenset({"prospect", "survey", "autumn", "winter"})) is False


async def test_hub_sends_a_fresh_summary_when_a_reload_changes_the_board(sample_config: Config) -> None:
    clock: Callable[[], datetime] = lambda: FIXED_NOW  # noqa: E731
    hub = LiveHub(board(sample_config), lambda: {"lists": []}, clock)  # not started: no ticks of its own
    client = hub.subscribe()
    assert client is not None
    [o] = await outcomes(sample_config, [("0612000001", "legacy", FIXED_NOW)])
    hub.decided(o, 0.0)
    hub.reconfigure(frozenset(sample_config.campaigns) | {"autumn"})  # nothing shown changes: no summary
    assert client.queue.empty()
    hub.reconfigure(frozenset({"prospect", "survey"}))
    raw = client.queue.get_nowait()
    assert raw is not None and raw.startswith(b"event: summary\n")
    summary = json.loads(raw.split(b"data: ", 1)[1])
    assert summary["lists"] == [] and summary["totals"]["blocked"] == 1
    assert [i["campaign"] for i in summary["latest"]] == ["unknown"]
    assert "legacy" not in json.dumps(summary["buckets"])
    assert hub.board.drain() is None  # the summary carried it: no tick repeats it


async def test_close_right_after_a_poke_ends_the_hub(sample_config: Config) -> None:
    # A reload pokes the hub; a shutdown just after it must still stop its loop (Python 3.11's wait_for
    # swallowed that cancel, and close() never returned).
    hub = LiveHub(board(sample_config), lambda: {}, lambda: FIXED_NOW, interval=60)
    await hub.start()
    await asyncio.sleep(0)  # the loop is now waiting for a poke
    hub.poke_status()
    closing = asyncio.ensure_future(hub.close())
    done, _ = await asyncio.wait({closing}, timeout=10)  # a hang guard only: it ends at once or never
    assert closing in done, "close() never returned"
    assert hub._task is not None and hub._task.cancelled()
