"""A live gateway for replay tests: the real FastAGI server on its own event loop in a thread,
as it would run in another process, so that ``dnc-gateway replay`` runs unchanged in the test's thread."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.audit import AuditLog
from gateway.config import Config, HostPort
from gateway.service import Gateway, Outcome

T = TypeVar("T")


@dataclass
class Live:
    port: int
    run: Callable[[Coroutine[Any, Any, Any]], Any]
    gateway: Gateway
    audit: AuditLog | None = None

    def check(self, number: str, campaign: str, caller_id: str) -> Outcome:
        result: Outcome = self.run(self.gateway.check(number, campaign, caller_id or None, record=False))
        return result


@pytest.fixture
def live(sample_config: Config, clock: Callable[[], datetime]) -> Iterator[Live]:
    yield from _live(sample_config, clock)


@pytest.fixture
def live6(sample_config: Config, clock: Callable[[], datetime]) -> Iterator[Live]:
    """The same, listening on IPv6 loopback."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    agi = replace(sample_config.agi, listen=HostPort("::1", 0))
    yield from _live(replace(sample_config, agi=agi), clock)


@pytest.fixture
def live_audited(sample_config: Config, clock: Callable[[], datetime], tmp_path: Path) -> Iterator[Live]:
    """The same, its decisions audited to ``tmp_path/audit.db`` (durably, as a production gateway's)."""
    yield from _live(sample_config, clock, tmp_path / "audit.db")


def _live(sample_config: Config, clock: Callable[[], datetime], audit_path: Path | None = None) -> Iterator[Live]:
    server_mod = pytest.importorskip("gateway.agi.server", reason="the FastAGI server (gateway/agi/server.py)")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(10)

    audit = AuditLog(audit_path, sample_config.audit, clock=lambda: clock().timestamp()) if audit_path else None
    gw = Gateway(sample_config, clock=clock, audit=audit)

    async def start() -> Any:
        if audit is not None:
            await audit.start()
        await gw.start()
        result = await gw.holder.reload()
        assert not result.failed
        srv = server_mod.AgiServer(gw, sample_config.agi)
        await srv.start()
        return srv

    srv = run(start())
    try:
        yield Live(srv.port, run, gw, audit)
    finally:
        run(srv.drain_and_close(1.0))
        run(gw.close())
        if audit is not None:
            run(audit.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


