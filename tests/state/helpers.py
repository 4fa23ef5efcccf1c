"""What tests that build a state store by hand give it: a store keeps what the configured windows need."""

from __future__ import annotations

from datetime import timedelta

from gateway.state.model import Retention

# The French defaults (30-day window, 60-day cooldown), each plus a day, as the engine derives them.
RETENTION = Retention(timedelta(days=31), timedelta(days=61))
