"""One withdrawal path that reaches every consent, wherever it was recorded (a real ``serve``), and the consents
API refuses a collection time in the future.

Before: ``registry entries revoke --list consent NUMBER`` printed "revoked 0 entries", exited 0, and left a consent
recorded over the API (or FastAGI) in force; ``POST /api/consents`` accepted a consent collected tomorrow (which
would make today's calls look covered).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.evidence.serving import WebServe, agi, cli, config

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


async def test_revoke_reaches_consents_recorded_over_the_api_and_fastagi(tmp_path: Path) -> None:
    conf = config(tmp_path / "gw", extra=CONSENT)
    gw = WebServe(conf, tmp_path)
    gw.start()
    try:
        assert gw.http("POST", "/api/consents", {"number": "0612001300", "source": "web form"})[0] == 201
        assert await agi(gw, "consent", "0612001301", "call", "recording-13") == "OK"
        for n in ("0612001300", "0612001301"):
            assert await gw.call(n, "callback") == ("ALLOW", "")
        for n in ("0612001300", "0612001301"):
            done = cli(conf, "registry", "entries", "revoke", n, "--list", "consent", "--source", "letter of 8 Dec")
            assert done.returncode == 0 and "revoked 1 consent entry" in done.stdout, done.stdout + done.stderr
        # The gateway re-reads the side store about once a second: wait (a dry run, nothing counted) until the
        # revocations are in force, at most 10 s; a fixed pause failed on a loaded machine.
        deadline = time.monotonic() + 10
        for n in ("0612001300", "0612001301"):
            while gw.http("GET", f"/api/check?number={n}&campaign=callback")[1]["verdict"] != "BLOCK":
                assert time.monotonic() < deadline, f"{n}: the revocation is not in force after 10 s"
                await asyncio.sleep(0.1)
        for n in ("0612001300", "0612001301"):
            verdict, reason = await gw.call(n, "callback")
            assert verdict == "BLOCK" and reason.startswith("no_consent"), (n, reason)
        # Nothing on record to revoke: not "revoked 0" and exit 0, but exit 1 and what does end it.
        done = cli(conf, "registry", "entries", "revoke", "0612001399", "--list", "consent", "--source", "x")
        assert done.returncode == 1 and "nothing revoked" in done.stderr and "refusal" in done.stderr
    finally:
        gw.kill()


async def test_a_consent_collected_in_the_future_is_refused(tmp_path: Path) -> None:
    conf = config(tmp_path / "gw", extra=CONSENT)
    gw = WebServe(conf, tmp_path)
    gw.start()
    try:
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        status, body = gw.http("POST", "/api/consents", {"number": "0612001400", "source": "web", "at": tomorrow})
        assert status == 400 and "future" in body["error"], body
        assert await gw.call("0612001400", "callback") == ("BLOCK", "no_consent")
        soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()  # a CRM clock a little ahead: accepted
        assert gw.http("POST", "/api/consents", {"number": "0612001401", "source": "web", "at": soon})[0] == 201
    finally:
        gw.kill()
