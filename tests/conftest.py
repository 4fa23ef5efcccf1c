"""Shared fixtures: a small config written by the test (lists and campaigns), a fixed clock.

``sample_config(tmp_path)`` gives a complete config whose lists are small text files, so
tests across the suite screen the same numbers the same way:

- 0612000001..0612000005 on the opposition list ``bloctel``
- 0612000009, 0612000010..0612000050, 0692000009 in the consent list
- 0612000100..0612000120 customers; 0612000200 company DNC; 0612000300 litigator
- prefixes 0899 and +1900 blocked
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.config import Config, parse
from tests.state.redis_server import RedisServer

# Tuesday 24 Nov 2026, 10:30 in Paris: a legal time to call, consent regime.
FIXED_NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

SAMPLE_TOML = """
[gateway]
home_country = "FR"
professional = "acme"
state = "memory://"
timezone = "Europe/Paris"

[agi]
listen = "127.0.0.1:0"
allow = ["127.0.0.0/8", "::1"]

[web]
listen = "127.0.0.1:0"
admin_token = "test-token"

[lists.bloctel]
kind = "opposition"
path = "bloctel.txt"
as_of = "2026-11-20"
max_age_days = 30

[lists.consent]
kind = "consent"
path = "consent.txt"
as_of = "2026-11-20"

[lists.customers]
kind = "customers"
path = "customers.txt"

[lists.company-dnc]
kind = "internal_dnc"
path = "company-dnc.txt"

[lists.litigators]
kind = "litigators"
path = "litigators.txt"

[lists.premium]
kind = "blocked_prefixes"
path = "premium.txt"

[campaigns.prospect]
lists = ["bloctel", "company-dnc", "litigators", "premium"]
consent = "consent"
customers = "customers"
caller_id = "0162000000"

[campaigns.legacy]
regime = "opposition"
lists = ["bloctel", "company-dnc", "litigators", "premium"]
customers = "customers"
caller_id = "0162000000"

[campaigns.survey]
category = "polling"
mode = "monitor"
lists = ["company-dnc"]
caller_id = "0162000002"
"""

SAMPLE_LISTS = {
    "bloctel.txt": [f"06120000{i:02d}" for i in range(1, 6)],
    "consent.txt": ["0612000009", *[f"06120000{i:02d}" for i in range(10, 51)], "0692000009"],
    "customers.txt": [f"06120001{i:02d}" for i in range(0, 21)],
    "company-dnc.txt": ["0612000200"],
    "litigators.txt": ["0612000300"],
    "premium.txt": ["0899", "+1900"],
}


def write_sample(root: Path, extra_toml: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, lines in SAMPLE_LISTS.items():
        (root / name).write_text("\n".join(lines) + "\n")
    path = root / "gateway.toml"
    path.write_text(SAMPLE_TOML + extra_toml)
    return path


@pytest.fixture
def sample_config_path(tmp_path: Path) -> Path:
    return write_sample(tmp_path / "conf")


@pytest.fixture
def sample_config(sample_config_path: Path) -> Config:
    return parse(sample_config_path.read_text(), str(sample_config_path), base=sample_config_path.parent)


@pytest.fixture
def clock() -> Callable[[], datetime]:
    return lambda: FIXED_NOW


@pytest.fixture(params=["sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A state store URL of each kind a gateway runs with: embedded (SQLite) and a real redis-server."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'state.db'}"
        return
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        yield redis.url
    finally:
        redis.stop()
