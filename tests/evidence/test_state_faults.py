"""Nothing the history acknowledged is lost (a real ``serve``, kill -9, a deleted state.db, a real redis-server
restarted empty).

Before: opt-outs were acknowledged before they reached disk (flushed every 50 ms), so a kill -9 right after the
acknowledgement lost most of them; the attempts of the last 50 ms too (a fifth call in 30 days was allowed);
and a deleted ``state.db`` or a Redis restarted empty went unnoticed: every number was allowed again.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.evidence.serving import WebServe, agi, cli, config
from tests.state.redis_server import RedisServer


async def test_an_optout_acknowledged_over_fastagi_or_the_api_survives_kill_9(tmp_path: Path) -> None:
    conf = config(tmp_path / "gw")
    for trial in range(4):
        gw = WebServe(conf, tmp_path)
        gw.start()
        try:
            agi_number, api_number = f"06120002{trial}0", f"06120002{trial}1"
            assert await agi(gw, "optout", agi_number) == "OK"
            status, _ = gw.http("POST", "/api/optouts", {"number": api_number})
            assert status == 201
        finally:
            gw.kill()  # kill -9 right after the acknowledgement
        gw = WebServe(conf, tmp_path)
        gw.start()
        try:
            assert (await gw.call(agi_number, "fours"))[0] == "BLOCK"
            assert (await gw.call(api_number, "fours"))[0] == "BLOCK"
        finally:
            gw.kill()


async def test_counted_attempts_survive_kill_9(tmp_path: Path) -> None:
    conf = config(tmp_path / "gw")
    gw = WebServe(conf, tmp_path)
    gw.start()
    try:
        for i in range(4):
            assert await gw.call("0612000300", "fours", uid=f"3.{i}") == ("ALLOW", "")
    finally:
        gw.kill()  # the last attempts were in memory only, but every ALLOW is in the audit trail
    gw.start()
    try:
        assert await gw.call("0612000300", "fours", uid="3.9") == ("BLOCK", "frequency_cap")
    finally:
        gw.kill()


async def test_a_deleted_state_db_is_noticed_and_rebuilt(tmp_path: Path) -> None:
    conf = config(tmp_path / "gw")
    gw = WebServe(conf, tmp_path)
    gw.start()
    try:
        for i in range(4):
            assert await gw.call("0612000400", "fours", uid=f"4.{i}") == ("ALLOW", "")
        assert await agi(gw, "optout", "0612000401") == "OK"
        assert await gw.call("0612000401", "fours") == ("BLOCK", "internal_dnc")
    finally:
        gw.stop()
    state = conf.parent / "state.db"
    for p in (state, Path(f"{state}-wal"), Path(f"{state}-shm"), Path(f"{state}.packed")):
        p.unlink(missing_ok=True)
    gw.start()
    try:
        # The empty history is not decided on: blocked, and said so.
        assert await gw.call("0612000499", "fours") == ("BLOCK", "state_unavailable")
        status, body = gw.http("GET", "/healthz")
        assert status == 503 and "state rebuild" in body["state_lost"], body
        assert gw.metric("dnc_state_lost_total") == 1.0
    finally:
        gw.stop()
    done = cli(conf, "state", "rebuild")
    assert done.returncode == 0, done.stderr
    # The attempts: added at the start above (the ALLOWs the history lacked) or now; the opt-out from its proof.
    assert "1 opt-outs" in done.stdout, done.stdout
    gw.start()
    try:
        assert gw.http("GET", "/healthz")[0] == 200
        assert await gw.call("0612000400", "fours") == ("BLOCK", "frequency_cap")
        assert await gw.call("0612000401", "fours") == ("BLOCK", "internal_dnc")
        assert await gw.call("0612000499", "fours") == ("ALLOW", "")
    finally:
        gw.kill()
    assert os.stat(state).st_mode & 0o777 == 0o600


async def test_a_redis_restarted_empty_is_noticed_and_rebuilt(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    conf = config(tmp_path / "gw", state=redis.url)
    gw = WebServe(conf, tmp_path, {"DNC_GATEWAY_STATE_SECRET": "evidence"})
    try:
        gw.start()
        for i in range(4):
            assert await gw.call("0612000500", "fours", uid=f"5.{i}") == ("ALLOW", "")
        assert await agi(gw, "optout", "0612000501") == "OK"
        redis.stop()
        redis.start()  # the same port, no data
        verdicts = [await gw.call("0612000500", "fours", uid=f"5.{i}") for i in range(5, 8)]
        assert ("ALLOW", "") not in verdicts, verdicts
        assert verdicts[-1] == ("BLOCK", "state_unavailable")
        status, body = gw.http("GET", "/healthz")
        assert status == 503 and body["state_lost"], body
        assert gw.metric("dnc_state_lost_total") == 1.0
        done = cli(conf, "state", "rebuild", env={"DNC_GATEWAY_STATE_SECRET": "evidence"})
        assert done.returncode == 0, done.stderr
        assert "rebuilt 4 attempts" in done.stdout and "1 opt-outs" in done.stdout, done.stdout
        await asyncio.sleep(1.2)  # the running gateway reads the marker again once a second
        assert await gw.call("0612000500", "fours", uid="5.9") == ("BLOCK", "frequency_cap")
        assert await gw.call("0612000501", "fours", uid="5.10") == ("BLOCK", "internal_dnc")
        assert gw.http("GET", "/healthz")[0] == 200
    finally:
        gw.kill()
        redis.stop()


CONSENT = """
[campaigns.callback]
regime = "consent"
consent = "consent"
caller_id = "0162000000"
check_hours = false
check_holidays = false
check_cooldown = false
check_frequency = false
"""


async def test_a_consent_and_a_refusal_acknowledged_survive_kill_9(tmp_path: Path) -> None:
    conf = config(tmp_path / "gw", extra=CONSENT)
    gw = WebServe(conf, tmp_path)
    gw.start()
    try:
        assert gw.http("POST", "/api/consents", {"number": "0612001500", "source": "web form"})[0] == 201
        assert await agi(gw, "consent", "0612001501", "call", "recording-15") == "OK"
    finally:
        gw.kill()
    gw.start()
    try:
        assert await gw.call("0612001500", "callback") == ("ALLOW", "")
        assert await gw.call("0612001501", "callback") == ("ALLOW", "")
        assert await agi(gw, "refusal", "0612001500") == "OK"
        assert gw.http("POST", "/api/refusals", {"number": "0612001501"})[0] == 201
    finally:
        gw.kill()
    gw.start()
    try:
        for n in ("0612001500", "0612001501"):
            verdict, reason = await gw.call(n, "callback")
            assert verdict == "BLOCK" and reason.startswith("no_consent"), (n, reason)
    finally:
        gw.kill()
