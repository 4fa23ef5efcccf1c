"""How the Redis backend bounds its round trips (the ``[gateway] state_*`` keys): a leaf module, so that the
config's defaults and the store's are the same values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """How the Redis backend bounds its round trips and when it stops trying (the ``[gateway] state_*`` keys)."""

    connect_timeout: float = 0.05  # seconds to open a connection
    # Seconds per round trip; a slower one fails that call (only). Above the stalls of a busy host (a GC pause, CPU
    # contention), below what the dialplan gives a gateway (two round trips per call).
    op_timeout: float = 0.15
    retry_interval: float = 0.5  # seconds calls fail fast once the breaker is open, before one probes again
    failures_to_open: int = 3  # consecutive failed round trips that open the breaker (one slow call never does)
    max_connections: int = 64  # pool size: a burst past it waits a moment for a connection
    warm_connections: int = 32  # opened at start (at most max_connections), so a burst pays no connects

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "op_timeout", "retry_interval", "failures_to_open", "max_connections",
                     "warm_connections"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


REDIS_DEFAULTS = RedisSettings()
