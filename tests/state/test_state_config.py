"""The ``[gateway] state_*`` keys that bound the Redis backend: defaults, values, and messages naming the key."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, parse
from gateway.state.model import REDIS_DEFAULTS


def _gateway(body: str) -> str:
    return f'[gateway]\nstate = "redis://127.0.0.1:6379/0"\n{body}\n'


def test_defaults_are_the_stores() -> None:
    g = parse(_gateway("")).gateway
    assert (g.state_connect_timeout, g.state_op_timeout, g.state_retry_interval, g.state_failures_to_open,
            g.state_max_connections, g.state_warm_connections) == (
        REDIS_DEFAULTS.connect_timeout, REDIS_DEFAULTS.op_timeout, REDIS_DEFAULTS.retry_interval,
        REDIS_DEFAULTS.failures_to_open, REDIS_DEFAULTS.max_connections, REDIS_DEFAULTS.warm_connections)


def test_values_are_read() -> None:
    g = parse(_gateway("state_connect_timeout = 0.2\nstate_op_timeout = 1\nstate_retry_interval = 2.5\n"
                       "state_failures_to_open = 5\nstate_max_connections = 8\nstate_warm_connections = 8")).gateway
    assert (g.state_connect_timeout, g.state_op_timeout, g.state_retry_interval, g.state_failures_to_open,
            g.state_max_connections, g.state_warm_connections) == (0.2, 1.0, 2.5, 5, 8, 8)


def test_a_small_pool_warms_what_it_holds() -> None:
    assert parse(_gateway("state_max_connections = 4")).gateway.state_warm_connections == 4


@pytest.mark.parametrize(("body", "message"), [
    ("state_op_timeout = 0", r"<config>:4: \[gateway\] state_op_timeout: must be positive, got 0"),
    ("state_connect_timeout = -1.0", r"\[gateway\] state_connect_timeout: must be positive"),
    ('state_retry_interval = "1s"', r"\[gateway\] state_retry_interval: expected float, got str '1s'"),
    ("state_failures_to_open = 1.5", r"\[gateway\] state_failures_to_open: expected int, got float"),
    ("state_max_connections = 0", r"\[gateway\] state_max_connections: must be positive"),
    ("state_max_connections = 4\nstate_warm_connections = 5",
     r"\[gateway\] state_warm_connections: 5 is more than state_max_connections \(4\)"),
    ("state_timeout = 1", r"\[gateway\] state_timeout: unknown key"),
])
def test_bad_values_name_the_key(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse("\n" + _gateway(body))
