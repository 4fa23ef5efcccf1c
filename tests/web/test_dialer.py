"""``POST /v1/decide`` and ``/v1/decide/batch`` over a real socket: dialer tokens (401/403), counted and
audited like FastAGI's check, the batch decided without counting; the OpenAPI description matches."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import aiohttp
import jsonschema
import pytest

from gateway.audit import AuditLog, AuditReader
from gateway.config import AuditSection, Config, ConfigError, parse
from gateway.web import openapi_dialer
from tests.conftest import SAMPLE_TOML
from tests.web.conftest import TOKEN, Served, serve

DIALER = "d1al3r-t0ken-0123456789"
LISTED = "0612000001"
ALLOWED = "0612000099"
# The campaigns' caller ID is presented: "legacy" is an opposition campaign checked at FIXED_NOW (a weekday).


@pytest.fixture
async def dialed(sample_config: Config, clock: Callable[[], datetime], tmp_path: Path) -> AsyncIterator[Served]:
    config = dataclasses.replace(sample_config, web=dataclasses.replace(
        sample_config.web, dialer_tokens=(("hopper", DIALER),)))
    audit = AuditLog(tmp_path / "audit.db", AuditSection())
    await audit.start()
    running, web = await serve(config, clock, audit=audit)
    async with aiohttp.ClientSession() as session:
        yield Served(running, web, session)
    await web.close()
    await running.gateway.close()
    await audit.close()


async def attempts(s: Served, number: str) -> int:
    key = s.gateway.normaliser.parse(number).key
    return len((await s.gateway.state.history(s.gateway.professional, key)).stamps)


def _schema(name: str) -> dict[str, object]:
    return {"$ref": f"#/components/schemas/{name}", "components": {"schemas": openapi_dialer.SCHEMAS}}


async def test_decide_counts_audits_and_answers_the_check_object(dialed: Served) -> None:
    status, body = await dialed.post("/v1/decide", {"number": ALLOWED, "campaign": "legacy"}, token=DIALER)
    assert status == 200 and body["verdict"] == "ALLOW" and body["number"] == "+33612000099"
    jsonschema.validate(body, _schema("DialerDecision"))
    assert await attempts(dialed, ALLOWED) == 1
    status, body2 = await dialed.post("/v1/decide", {"number": LISTED, "campaign": "legacy",
                                                     "caller_id": "0162000000"}, token=DIALER)
    assert status == 200 and (body2["verdict"], body2["reason"]) == ("BLOCK", "opposition_list")
    audit = dialed.running.audit
    assert isinstance(audit, AuditLog)
    await audit.close()  # commits what is queued
    with AuditReader(audit.path) as r:
        rows = r.query()
    assert [(r["decision_id"], r["source"], r["channel"]) for r in rows] == [
        (body["decision_id"], "dialer", "dialer/hopper"), (body2["decision_id"], "dialer", "dialer/hopper")]


async def test_the_batch_decides_in_order_without_counting(dialed: Served) -> None:
    calls = [{"number": n, "campaign": "legacy"} for n in (ALLOWED, LISTED, "12")]
    status, body = await dialed.post("/v1/decide/batch", {"calls": calls}, token=DIALER)
    assert status == 200 and body["count"] == 3
    jsonschema.validate(body, _schema("DialerBatchResult"))
    assert [r["verdict"] for r in body["results"]] == ["ALLOW", "BLOCK", "BLOCK"]
    assert body["results"][2]["reason"] == "invalid_number"
    assert await attempts(dialed, ALLOWED) == 0


@pytest.mark.parametrize("path", ["/v1/decide", "/v1/decide/batch"])
async def test_dialer_routes_take_a_dialer_token_only(dialed: Served, path: str) -> None:
    body = {"number": ALLOWED, "campaign": "legacy"}
    status, err = await dialed.post(path, body, token=None)
    assert status == 401 and "dialer token" in err["error"]
    status, err = await dialed.post(path, body, token="not-the-dialer-token")
    assert status == 403
    status, err = await dialed.post(path, body, token=TOKEN)  # the admin token is not a dialer's
    assert status == 403
    assert await attempts(dialed, ALLOWED) == 0


async def test_without_dialer_tokens_the_routes_are_closed(served: Served) -> None:
    status, err = await served.post("/v1/decide", {"number": ALLOWED, "campaign": "legacy"}, token=DIALER)
    assert status == 403 and "dialer_tokens_file" in err["error"]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/decide", {"number": ALLOWED}, "campaign"),
    ("/v1/decide", {"number": "abc", "campaign": "legacy"}, "number"),
    ("/v1/decide", {"number": ALLOWED, "campaign": "legacy", "at": "x"}, "at"),
    ("/v1/decide/batch", {"calls": []}, "calls"),
    ("/v1/decide/batch", {"calls": [{"number": ALLOWED, "campaign": "legacy"}] * 1001}, "calls"),
    ("/v1/decide/batch", {"calls": [{"number": ALLOWED}]}, "calls[0].campaign"),
])
async def test_bad_bodies_say_which_field(dialed: Served, path: str, body: object, field: str) -> None:
    status, err = await dialed.post(path, body, token=DIALER)
    assert status == 400 and err.get("field") == field, err


def test_the_openapi_paths_name_their_schemas() -> None:
    refs = str(openapi_dialer.PATHS)
    for name in openapi_dialer.SCHEMAS:
        assert name in refs or any(name in str(s) for s in openapi_dialer.SCHEMAS.values())
    jsonschema.validate({"number": ALLOWED, "campaign": "legacy"}, _schema("DialerCall"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"number": ALLOWED}, _schema("DialerCall"))


def test_dialer_tokens_file(tmp_path: Path) -> None:
    (tmp_path / "dialers").write_text("# name token\nhopper  aaaaaaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbb\n\n")
    text = SAMPLE_TOML.replace('admin_token = "test-token"',
                               'admin_token = "test-token"\ndialer_tokens_file = "dialers"')
    cfg = parse(text, base=tmp_path)
    assert cfg.web.dialer_tokens == (("hopper", "a" * 20), ("dialer3", "b" * 20))
    (tmp_path / "dialers").write_text("short\n")
    with pytest.raises(ConfigError, match="16 characters"):
        parse(text, base=tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        parse(text.replace('"dialers"', '"missing"'), base=tmp_path)


async def test_the_batch_is_not_shown_as_calls_on_the_live_page(dialed: Served) -> None:
    before = dialed.web.hub.summary()
    await dialed.post("/v1/decide/batch", {"calls": [{"number": LISTED, "campaign": "legacy"}]}, token=DIALER)
    assert dialed.web.hub.summary() == before
    await dialed.post("/v1/decide", {"number": LISTED, "campaign": "legacy"}, token=DIALER)
    assert dialed.web.hub.summary() != before
