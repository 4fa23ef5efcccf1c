"""The gateway every scrub test screens with: the sample config, its lists loaded."""

from __future__ import annotations

import pytest

from gateway.config import Config
from gateway.service import Gateway


@pytest.fixture
def gateway(sample_config: Config) -> Gateway:
    gw = Gateway(sample_config)
    assert gw.holder.load_all().ok
    return gw
