"""A running ``serve`` keeps every attempt its longest window needs (issue: a 60-day window undercounted).

The stores used to drop attempts older than a fixed 31 days whatever ``window_days`` said, so a campaign
allowing 2 calls in 60 days let a third through on day 40. The gateway runs as installed, under libfaketime
(its wall clock moved by the test through a timestamp file; the monotonic clock left alone so timeouts
behave), and calls arrive over FastAGI, so the whole path is the production one: the engine's cap, the
service's count, the store's retention, and a restart that reloads the history from SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import write_sample
from tests.serving import Serve

# Debian's path, whatever the architecture.
LIBFAKETIME = next(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"), Path("/nonexistent"))

pytestmark = pytest.mark.skipif(not LIBFAKETIME.exists(), reason="needs libfaketime (Debian package faketime)")

CAMPAIGN = """
[campaigns.slow]
regime = "none"
lists = ["company-dnc"]
caller_id = "0162000000"
window_days = 60
max_attempts = 2
check_hours = false
check_holidays = false
"""
DAY0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def clocked(conf: Path, clock_file: Path, cwd: Path) -> Serve:
    """A gateway whose wall clock is the time written in ``clock_file`` (libfaketime, re-read on every call)."""
    return Serve(conf, cwd, {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_NO_CACHE": "1",
                             "FAKETIME_TIMESTAMP_FILE": str(clock_file), "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                             "DNC_GATEWAY_STATE_SECRET": "windows-test"})


def serve_clock(serve: Serve) -> Path:
    return Path(serve.env["FAKETIME_TIMESTAMP_FILE"])


def set_time(clock_file: Path, at: datetime) -> None:
    # libfaketime's absolute form; re-read on every clock call (FAKETIME_NO_CACHE).
    clock_file.write_text("@" + at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "\n")


@contextmanager
def serving(tmp_path: Path, state: str) -> Iterator[Serve]:
    conf = write_sample(tmp_path / "conf", CAMPAIGN)
    conf.write_text(conf.read_text().replace('state = "memory://"', f'state = "{state}"'))
    serve = clocked(conf, tmp_path / "clock", tmp_path)
    set_time(serve_clock(serve), DAY0)
    try:
        yield serve
    finally:
        serve.kill()



async def test_a_60_day_window_counts_calls_older_than_31_days(tmp_path: Path, state_url: str) -> None:
    with serving(tmp_path, state_url) as serve:
        serve.start()
        assert await serve.call("0612000077", "slow") == ("ALLOW", "")
        set_time(serve_clock(serve), DAY0 + timedelta(days=35))
        assert await serve.call("0612000077", "slow") == ("ALLOW", "")
        # A restart reloads the history from the store: day 0 must survive it on day 40.
        serve.stop()
        set_time(serve_clock(serve), DAY0 + timedelta(days=40))
        serve.start()
        assert await serve.call("0612000077", "slow") == ("BLOCK", "frequency_cap")
        # Day 61 in the callee's calendar: day 0 has left the window, day 35 has not.
        set_time(serve_clock(serve), DAY0 + timedelta(days=60, hours=1))
        assert await serve.call("0612000077", "slow") == ("ALLOW", "")
        serve.stop()
