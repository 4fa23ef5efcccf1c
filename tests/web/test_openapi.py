"""The API from its OpenAPI document: every route described, and fuzzed by schemathesis against a real
listener (no 5xx on any input, every answer matching its schema), admin routes with the token too."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from gateway.audit import AuditLog
from gateway.config import parse
from gateway.web import openapi
from gateway.web.app import WebServer
from tests.conftest import FIXED_NOW, write_sample
from tests.web.conftest import TOKEN, serve

SCHEMA = schemathesis.openapi.from_dict(openapi.document())


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway's web listener on its own loop in a thread: schemathesis calls it synchronously."""
    path = write_sample(Path(tmp_path_factory.mktemp("openapi")) / "conf")
    text = path.read_text().replace('state = "memory://"', 'state = "memory://"\naudit = "audit.log"', 1)
    config = parse(text, str(path), base=path.parent)
    assert config.gateway.audit is not None
    loop = asyncio.new_event_loop()
    started: list[WebServer] = []
    ready = threading.Event()

    async def main() -> None:
        assert config.gateway.audit is not None
        audit = AuditLog(config.gateway.audit, config.audit)
        await audit.start()
        running, web = await serve(config, lambda: FIXED_NOW, audit=audit)
        web.api.reloader = running.reload  # as gateway.app.start wires it
        started.append(web)
        ready.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        finally:
            await web.close()
            await running.gateway.close()
            await audit.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    task_holder: list[asyncio.Task[None]] = []
    loop.call_soon(lambda: task_holder.extend(asyncio.all_tasks(loop)))
    thread.start()
    assert ready.wait(30)
    yield f"http://127.0.0.1:{started[0].port}"
    for task in task_holder:
        loop.call_soon_threadsafe(task.cancel)
    thread.join(10)


def test_every_route_is_described() -> None:
    doc = openapi.document()
    for path in ("/healthz", "/metrics", "/api/check", "/api/summary", "/api/refusals", "/api/optouts",
                 "/api/consents", "/api/registry/reload", "/api/registry/accept", "/api/reload", "/api/audit",
                 "/api/proof", "/api/openapi.json", "/v1/decide", "/v1/decide/batch"):
        assert path in doc["paths"], path
    assert "dialerToken" in doc["components"]["securitySchemes"] and "Decision" in doc["components"]["schemas"]
    merged = openapi.document({"/v1/other": {"post": {"responses": {"200": {"description": "d"}}}}})
    assert "/v1/other" in merged["paths"] and "/v1/other" not in openapi.document()["paths"]


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_5xx_and_answers_match_the_schema(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"},
                           checks=[not_a_server_error, response_schema_conformance])
