"""Through the service with a real state store (SQLite, Redis): Florida's 3 calls in 24 hours, counted by the
store's atomic cap as the calls are made; a refusal to a US number is a do-not-call request, not France's cooldown."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.config import parse
from gateway.service import Gateway

EASTERN = ZoneInfo("America/New_York")
T0 = datetime(2026, 7, 14, 10, 0, tzinfo=EASTERN)  # a Tuesday
MIAMI = "+13055550123"
NEW_YORK = "+12125550123"


def _gateway(tmp_path: Path, state_url: str) -> Gateway:
    (tmp_path / "dnc.txt").write_text("+12125550200\n")
    config = parse(f"""
[gateway]
state = "{state_url}"
[lists.dnc]
kind = "internal_dnc"
path = "dnc.txt"
[campaigns.c]
lists = ["dnc"]
caller_id = "+33162000000"
""", base=tmp_path)
    gw = Gateway(config, clock=lambda: T0)
    gw.holder.load_all()
    return gw


async def test_florida_three_calls_in_24_hours_through_the_store(tmp_path: Path, state_url: str) -> None:
    gw = _gateway(tmp_path, state_url)
    await gw.start()
    try:
        verdicts = []
        for hours in (0, 2, 4, 6):
            d = (await gw.check(MIAMI, "c", now=T0 + timedelta(hours=hours))).decision
            verdicts.append((d.verdict, d.reason))
        assert verdicts == [("ALLOW", None)] * 3 + [("BLOCK", "frequency_cap")]
        # 24 hours after the first call, a slot is free again (a rolling window, not a calendar day) ...
        d = (await gw.check(MIAMI, "c", now=T0 + timedelta(hours=24, minutes=1))).decision
        assert (d.verdict, d.reason) == ("ALLOW", None)
        # ... and taken at once: the fifth attempt counted, the next one within the window is refused.
        d = (await gw.check(MIAMI, "c", now=T0 + timedelta(hours=24, minutes=2))).decision
        assert (d.verdict, d.reason) == ("BLOCK", "frequency_cap")
        # New York has no such cap: six calls in an hour go through.
        for minutes in range(6):
            d = (await gw.check(NEW_YORK, "c", now=T0 + timedelta(minutes=minutes))).decision
            assert (d.verdict, d.reason) == ("ALLOW", None)
    finally:
        await gw.close()


async def test_a_us_refusal_is_a_do_not_call_request(tmp_path: Path, state_url: str) -> None:
    gw = _gateway(tmp_path, state_url)
    await gw.start()
    try:
        await gw.refusal(NEW_YORK, now=T0)
        for later in (timedelta(days=1), timedelta(days=61), timedelta(days=4 * 365)):
            d = (await gw.check(NEW_YORK, "c", now=T0 + later)).decision
            assert (d.verdict, d.rule) == ("BLOCK", "internal_dnc.refusal"), later
    finally:
        await gw.close()
