"""Redis state backend, shared by several gateways (issue 7)."""

from __future__ import annotations

from datetime import datetime

from gateway.state.model import History
from gateway.state.store import Cap, StateUnavailable


class RedisState:
    def __init__(self, url: str) -> None:
        self.url = url

    async def history(self, professional: str, key: int) -> History:
        raise StateUnavailable("the Redis backend is not implemented yet")

    async def record_attempt(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool:
        raise StateUnavailable("the Redis backend is not implemented yet")

    async def record_refusal(self, professional: str, key: int, at: datetime) -> None:
        raise StateUnavailable("the Redis backend is not implemented yet")

    async def record_optout(self, professional: str, key: int, at: datetime) -> None:
        raise StateUnavailable("the Redis backend is not implemented yet")

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
