"""A started Gateway on the shared sample config and fixed clock, for the FastAGI tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime

import pytest

from gateway.config import Config
from gateway.service import Gateway


@pytest.fixture
async def gateway(sample_config: Config, clock: Callable[[], datetime]) -> AsyncIterator[Gateway]:
    gw = Gateway(sample_config, clock=clock)
    await gw.start()
    gw.holder.load_all()
    yield gw
    await gw.close()
