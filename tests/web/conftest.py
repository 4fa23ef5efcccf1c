"""A running WebServer on a free port, over the shared sample config and the fixed clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from gateway.app import Running
from gateway.config import Config
from gateway.metrics import Metrics
from gateway.service import Gateway
from gateway.web.app import WebServer
from tests.proof.conftest import history, made  # noqa: F401  (fixtures: a number's history, for /api/proof)

TOKEN = "test-token"  # the sample config's [web] admin_token


class Served:
    def __init__(self, running: Running, web: WebServer, session: aiohttp.ClientSession) -> None:
        self.running = running
        self.gateway = running.gateway
        self.web = web
        self.metrics: Metrics = running.metrics
        self.http = session
        self.base = f"http://127.0.0.1:{web.port}"

    def url(self, path: str) -> str:
        return self.base + path

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.get(self.url(path), **kw) as r:
            return r.status, await (r.json() if r.content_type == "application/json" else r.text())

    async def post(self, path: str, body: Any = None, *, token: str | None = TOKEN, raw: bytes | None = None
                   ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        async with self.http.post(self.url(path), data=data, headers=headers) as r:
            return r.status, await r.json()


async def serve(config: Config, clock: Callable[[], datetime], *, audit: Any = None, ami: Any = None,
                **web_kw: Any) -> tuple[Running, WebServer]:
    gateway = Gateway(config, clock=clock, audit=audit)
    await gateway.start()
    gateway.holder.load_all()
    metrics = Metrics(gateway)
    gateway.observers.append(metrics)
    if audit is not None:
        audit.metrics = metrics  # as gateway.app.start wires it
    running = Running(config, gateway, audit, metrics, ami=ami)
    web = WebServer(gateway, config.web, metrics=metrics, running=running, **web_kw)
    running.web = web
    await web.start()
    return running, web


@pytest.fixture
async def served(sample_config: Config, clock: Callable[[], datetime]) -> AsyncIterator[Served]:
    running, web = await serve(sample_config, clock, live_interval=0.05, status_every=0.2)
    async with aiohttp.ClientSession() as session:
        yield Served(running, web, session)
    await web.close()
    await running.gateway.close()
