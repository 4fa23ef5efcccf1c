"""The HTTP JSON API over a real socket: DESIGN §7 routes, admin auth (401/403/2xx) and 400s that say why."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli import main as cli_main
from gateway.config import Config
from tests.conftest import FIXED_NOW
from tests.web.conftest import TOKEN, Served, serve

ADMIN_ROUTES = [("POST", "/api/refusals", {"number": "0612000010"}),
                ("POST", "/api/optouts", {"number": "0612000011"}),
                ("POST", "/api/consents", {"number": "0612000012", "source": "web form"}),
                ("POST", "/api/registry/reload", None),
                ("GET", "/api/audit?number=0612000001", None)]


async def call(s: Served, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
               ) -> tuple[int, dict[str, object], aiohttp.typedefs.LooseHeaders]:
    data = None if body is None else json.dumps(body).encode()
    async with s.http.request(method, s.url(path), data=data, headers=headers or {}) as r:
        assert r.content_type == "application/json", (path, r.status, await r.text())
        return r.status, await r.json(), r.headers


# -- public routes ---------------------------------------------------------------------------------

async def test_check_gives_the_same_json_as_the_cli(served: Served, sample_config_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    at = FIXED_NOW.isoformat()
    for number, campaign in (("0612000001", "legacy"), ("0612000010", "prospect"), ("0612000200", "survey"),
                             ("112", "prospect"), ("0000", "prospect")):
        status, body = await served.get("/api/check", params={"number": number, "campaign": campaign, "at": at})
        assert status == 200
        argv = ["--config", str(sample_config_path), "check", number, "--campaign", campaign, "--at", at, "--json"]
        assert await asyncio.to_thread(cli_main, argv) == 0  # the CLI runs its own event loop
        assert body == json.loads(capsys.readouterr().out), (number, campaign)
    # An unknown campaign: the API answers as the dialplan would hear it; the CLI says it is a typo (exit 2).
    status, body = await served.get("/api/check", params={"number": "0612000001", "campaign": "nope", "at": at})
    assert (status, body["reason"]) == (200, "unknown_campaign")
    argv = ["--config", str(sample_config_path), "check", "0612000001", "--campaign", "nope", "--at", at]
    assert await asyncio.to_thread(cli_main, argv) == 2
    capsys.readouterr()
    status, body = await served.get("/api/check?number=%2B33612000001&campaign=legacy&caller_id=0162000000")
    assert (status, body["verdict"], body["reason"]) == (200, "BLOCK", "opposition_list")


async def test_check_is_a_dry_run(served: Served) -> None:
    for _ in range(6):  # more than max_attempts (4): a dry run counts no attempt
        status, body = await served.get("/api/check?number=0612000010&campaign=legacy")
        assert (status, body["verdict"]) == (200, "ALLOW")
    outcome = await served.gateway.check("0612000010", "legacy")
    assert outcome.decision.verdict == "ALLOW"
    status, summary = await served.get("/api/summary")
    assert summary["totals"]["decisions"] == 1  # only the real call is on the supervisor page
    text = await (await served.http.get(served.url("/metrics"))).text()
    api = [s for f in text_string_to_metric_families(text) for s in f.samples
           if s.name == "dnc_decisions_total" and s.labels["source"] == "api"]
    assert sum(s.value for s in api) == 6


@pytest.mark.parametrize(("query", "field", "words"), [
    ("campaign=legacy", "number", "missing number"),
    ("number=&campaign=legacy", "number", "missing number"),
    ("number=06-12-ab&campaign=legacy", "number", "not a phone number"),
    ("number=0612000001", "campaign", "missing campaign"),
    ("number=0612000001&campaign=le%20gacy", "campaign", "not a campaign name"),
    ("number=0612000001&campaign=legacy&at=yesterday", "at", "not an ISO-8601"),
    ("number=0612000001&campaign=legacy&at=2026-11-24T10:30", "at", "no UTC offset"),
    ("number=0612000001&campaign=legacy&callerid=1", "callerid", "unknown parameter"),
])
async def test_check_validation(served: Served, query: str, field: str, words: str) -> None:
    status, body, _ = await call(served, "GET", f"/api/check?{query}")
    assert status == 400
    assert body["field"] == field and words in str(body["error"])


async def test_healthz(served: Served) -> None:
    status, body = await served.get("/healthz")
    assert status == 200
    assert body["ok"] is True
    assert sorted(body["lists"]["loaded"]) == sorted(served.gateway.config.lists)
    assert body["lists"]["failed"] == {}
    assert body["ami"] == "off"


async def test_healthz_reports_a_list_that_is_not_loaded(sample_config: Config, clock: Callable[[], datetime]
                                                         ) -> None:
    path = sample_config.lists["litigators"].path
    assert path is not None
    path.unlink()
    running, web = await serve(sample_config, clock)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://{web.address}/healthz") as r:
            body = await r.json()
        assert r.status == 503
        assert body["ok"] is False and body["status"] == "down" and "litigators" in body["lists"]["failed"]
        assert "litigators" not in body["lists"]["loaded"]
    finally:
        await web.close()
        await running.gateway.close()


async def test_healthz_says_degraded_after_a_failed_reload_and_stays_in_rotation(served: Served) -> None:
    """Issue 15 #8: the previous version serves, so 200, but "ok" is false, the status "degraded", and why."""
    path = served.gateway.config.lists["bloctel"].path
    assert path is not None
    path.write_text("not a number 0612345678 at all\nnor this\n")  # garbage: refused, the old version stays
    status, body = await served.post("/api/registry/reload", {"lists": ["bloctel"]})
    assert status == 200 and body["ok"] is False
    status, health = await served.get("/healthz")
    assert status == 200
    assert health["ok"] is False and health["status"] == "degraded"
    assert "bloctel" in health["lists"]["loaded"] and "bloctel" in health["lists"]["failed"]
    failed = health["lists"]["reload_failed"]["bloctel"]
    assert failed["at"] == failed["since"] == FIXED_NOW.timestamp()
    assert (failed["origin"], failed["count"]) == ("reload", 1) and failed["error"]
    assert "0612345678" not in json.dumps(health)  # a quoted bad line is masked

    path.write_text("0612000001\n")
    status, body = await served.post("/api/registry/reload", {"lists": ["bloctel"]})
    assert body["ok"] is True
    status, health = await served.get("/healthz")
    assert (status, health["ok"], health["status"], health["lists"]["reload_failed"]) == (200, True, "ok", {})


async def test_summary_carries_lists_and_status(served: Served) -> None:
    status, body = await served.get("/api/summary")
    assert status == 200
    assert body["now"] == FIXED_NOW.timestamp()
    bloctel = next(entry for entry in body["lists"] if entry["name"] == "bloctel")
    assert (bloctel["age_days"], bloctel["max_age_days"], bloctel["freshness"]) == (4, 30, "ok")
    assert body["ami"] == {"state": "off", "connected": None}


async def test_errors_are_json(served: Served) -> None:
    status, body, _ = await call(served, "GET", "/api/nope")
    assert status == 404 and body["error"]
    status, body, _ = await call(served, "GET", "/api/refusals")
    assert status == 405


async def test_page_and_metrics_are_served(served: Served) -> None:
    async with served.http.get(served.url("/")) as r:
        assert r.status == 200 and "text/html" in r.content_type
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        assert "/static/app.js" in await r.text()
    for asset in ("/static/app.js", "/static/style.css"):
        async with served.http.get(served.url(asset)) as r:
            assert r.status == 200
    async with served.http.get(served.url("/metrics")) as r:
        assert r.status == 200 and r.content_type == "text/plain"
        names = {f.name for f in text_string_to_metric_families(await r.text())}
    assert {"dnc_decisions", "dnc_list_size", "dnc_ami_connected"} <= names


# -- admin routes ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_admin_routes_need_the_token(served: Served, method: str, path: str, body: object) -> None:
    status, err, headers = await call(served, method, path, body)
    assert status == 401 and "Bearer" in str(err["error"])
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, err, _ = await call(served, method, path, body, {"Authorization": "Basic dGVzdDp0ZXN0"})
    assert status == 401
    status, err, _ = await call(served, method, path, body, {"Authorization": "Bearer not-the-token"})
    assert status == 403 and "not the admin token" in str(err["error"])
    status, _, _ = await call(served, method, path, body, {"Authorization": f"Bearer {TOKEN}"})
    assert status in (200, 201, 503)  # 503: /api/audit without an audit log


async def test_admin_routes_are_closed_without_a_configured_token(sample_config: Config,
                                                                  clock: Callable[[], datetime]) -> None:
    config = replace(sample_config, web=replace(sample_config.web, admin_token=""))
    running, web = await serve(config, clock)
    try:
        async with aiohttp.ClientSession() as http:
            for method, path, body in ADMIN_ROUTES:
                for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
                    async with http.request(method, f"http://{web.address}{path}", json=body, headers=headers) as r:
                        assert r.status == 403, (path, headers)
                        assert "disabled" in (await r.json())["error"]
    finally:
        await web.close()
        await running.gateway.close()


async def test_refusal_and_optout_take_effect_at_once(served: Served) -> None:
    status, body = await served.post("/api/refusals", {"number": "06 12 00 00 10", "campaign": "legacy"})
    assert (status, body) == (201, {"ok": True, "recorded": "refusal", "number": "+33612000010"})
    status, body = await served.post("/api/optouts", {"number": "+33612000011"})
    assert (status, body["recorded"]) == (201, "optout")
    for number, reason in (("0612000010", "refusal_cooldown"), ("0612000011", "internal_dnc")):
        _, decision = await served.get(f"/api/check?number={number}&campaign=legacy")
        assert (decision["verdict"], decision["reason"]) == ("BLOCK", reason)


@pytest.mark.parametrize(("raw", "words"), [
    (b"", "empty body"),
    (b"{\"number\": ", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b"{}", "missing number"),
    (b"{\"number\": \"06 xx\"}", "not a phone number"),
    (b"{\"number\": \"0000\"}", "not a callable number"),
    (b"{\"number\": \"112\"}", "not a callable number"),
    (b"{\"number\": \"0612000010\", \"why\": \"rude\"}", "unknown field 'why'"),
    (b"{\"number\": \"0612000010\", \"at\": \"now\"}", "not an ISO-8601"),
])
async def test_refusal_validation(served: Served, raw: bytes, words: str) -> None:
    for path in ("/api/refusals", "/api/optouts"):
        status, body = await served.post(path, raw=raw)
        assert status == 400 and words in body["error"], (path, body)


async def test_oversized_body_is_refused(served: Served) -> None:
    status, body = await served.post("/api/refusals", raw=b"{\"number\": \"" + b"1" * 100_000 + b"\"}")
    assert status == 400 and "too large" in body["error"]


async def test_registry_reload(served: Served) -> None:
    before = served.gateway.holder.current.version("bloctel")
    path = served.gateway.holder.specs["bloctel"].path
    assert path is not None
    path.write_text(path.read_text() + "0612000099\n")
    status, body = await served.post("/api/registry/reload", {"lists": ["bloctel"]})
    assert status == 200 and body["ok"] is True
    assert body["loaded"]["bloctel"]["count"] == 6
    assert body["loaded"]["bloctel"]["version"] != before
    _, decision = await served.get("/api/check?number=0612000099&campaign=legacy")
    assert decision["reason"] == "opposition_list"
    status, body = await served.post("/api/registry/reload", {"lists": ["nope"]})
    assert status == 400 and "no list named 'nope'" in body["error"]
    status, body = await served.post("/api/registry/reload")
    assert status == 200 and set(body["loaded"]) == set(served.gateway.config.lists)


async def test_audit_without_an_audit_log(served: Served) -> None:
    status, body, _ = await call(served, "GET", "/api/audit", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 503 and "no audit log" in str(body["error"])
    status, body, _ = await call(served, "GET", "/api/audit?since=soon", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 400 and body["field"] == "since"


async def test_audit_query(sample_config: Config, clock: Callable[[], datetime], tmp_path: Path) -> None:
    audit_mod = pytest.importorskip("gateway.audit", reason="gateway.audit (the audit log) is not there yet")
    written = clock().timestamp() + 2.5  # the writer's wall clock: a little after the decisions
    audit = audit_mod.AuditLog(tmp_path / "audit.db", sample_config.audit, clock=lambda: written)
    await audit.start()
    running, web = await serve(sample_config, clock, audit=audit)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        gw = running.gateway
        await gw.check("0612000001", "legacy", channel="PJSIP/agent-00000001", uniqueid="1700000000.1")
        await gw.check("0612000010", "legacy")
        await gw.check("+33612000001", "prospect")
        await gw.check("0612000001", "survey", source="api", record=False)  # a dry run: not audited
        async with asyncio.timeout(5):  # BLOCKs are committed in the background: wait for the group commit
            while audit.stats()["records_written"] < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        async with aiohttp.ClientSession(headers=auth) as http:
            base = f"http://{web.address}/api/audit"
            async with http.get(base, params={"number": "06 12 00 00 01"}) as r:
                body = await r.json()
            assert r.status == 200 and body["count"] == 2 and body["truncated"] is False
            assert {rec["campaign"] for rec in body["records"]} == {"legacy", "prospect"}
            assert all(rec["number"] == "+33612000001" for rec in body["records"])
            assert body["records"][0]["channel"] == "PJSIP/agent-00000001"
            # Issue 15 #11: when each record was written, beside when the call was decided.
            assert {(rec["at"], rec["written_at"]) for rec in body["records"]} == {(written - 2.5, written)}
            async with http.get(base, params={"campaign": "legacy", "limit": "1"}) as r:
                body = await r.json()
            assert body["count"] == 1 and body["truncated"] is True
            async with http.get(base, params={"since": "2026-11-24T09:31:00Z"}) as r:
                assert (await r.json())["count"] == 0
            async with http.get(base, params={"until": "2026-11-24T10:31:00+01:00"}) as r:
                assert (await r.json())["count"] == 3
            async with http.get(base, params={"limit": "0"}) as r:
                assert r.status == 400
        async with aiohttp.ClientSession() as http, http.get(f"http://{web.address}/api/summary") as r:
            summary = await r.json()
        assert summary["audit"]["available"] is True
    finally:
        await web.close()
        await running.gateway.close()
        await audit.close()


async def test_a_consent_recorded_over_the_api_decides_at_once(served: Served) -> None:
    """Issue 13: POST /api/consents (admin) records a consent with its proof, in force at the next call."""
    q = {"number": "0612000077", "campaign": "prospect", "at": FIXED_NOW.isoformat()}
    _, before = await served.get("/api/check", params=q)
    assert (before["verdict"], before["reason"]) == ("BLOCK", "no_consent")
    body = {"number": "06 12 00 00 77", "source": "web form", "evidence": "sha256:9f2c", "wording_version": "v3",
            "channel": "web", "at": (FIXED_NOW - timedelta(days=2)).isoformat()}
    status, reply = await served.post("/api/consents", body)
    assert (status, reply) == (201, {"ok": True, "recorded": "consent", "number": "+33612000077"})
    _, after = await served.get("/api/check", params=q)
    assert (after["verdict"], after["basis"]) == ("ALLOW", "consent"), after
    assert "given on 2026-11-22" in after["detail"]
    holder = served.gateway.holder
    with holder.side_lock:
        store = holder.side()
        assert store is not None
        (entry,) = store.entries(served.gateway.normaliser.parse("0612000077").key)
    assert (entry.list, entry.origin, entry.evidence, entry.wording_version, entry.channel) == (
        "*", "api", "sha256:9f2c", "v3", "web")
    status, reply = await served.post("/api/consents", {"number": "0612000078"})
    assert status == 400 and "source" in reply["error"]


async def test_a_refusal_older_than_the_history_keeps_is_refused_not_dropped(
        sample_config: Config, clock: Callable[[], datetime]) -> None:
    """The store keeps refusals as long as the packs reached honour them; an older one would be acknowledged and
    pruned at once: 400. Campaigns held to the US pack (5 years), so that the horizon is a date the API reads;
    auto campaigns reach the United Kingdom's objections, kept until withdrawn (a century: before any `at`
    the API accepts, which is also a 400)."""
    us = replace(sample_config, campaigns={n: replace(c, jurisdiction="US")
                                           for n, c in sample_config.campaigns.items()})
    running, web = await serve(us, clock, live_interval=0.05, status_every=0.2)
    try:
        async with aiohttp.ClientSession() as session:
            served = Served(running, web, session)
            horizon = served.gateway.refusal_horizon()
            assert horizon.year > 2000, horizon
            old = (horizon - timedelta(days=1)).isoformat()
            status, body = await served.post("/api/refusals", {"number": "0612000010", "at": old})
            assert status == 400 and "older than the call history keeps" in body["error"], body
            kept = (horizon + timedelta(days=2)).isoformat()
            status, body = await served.post("/api/refusals", {"number": "0612000010", "at": kept})
            assert status == 201, body
    finally:
        await web.close()
        await running.gateway.close()


async def test_a_refusal_before_any_time_the_api_reads_is_refused(served: Served) -> None:
    status, body = await served.post("/api/refusals", {"number": "0612000010", "at": "1926-09-09T09:30:00+00:00"})
    assert status == 400 and body["field"] == "at", body
