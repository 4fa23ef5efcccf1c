"""The History the rules read: attempts held as stamps, counted by bisection, their instants built on first use."""

from __future__ import annotations

import dataclasses
from array import array
from datetime import timedelta

import pytest

from gateway.state.model import EMPTY_HISTORY, EPOCH, History, stamp
from tests.conftest import FIXED_NOW


def test_attempts_are_kept_in_time_order_rounded_up_to_the_second() -> None:
    h = History((FIXED_NOW, FIXED_NOW - timedelta(days=2, microseconds=-1)))
    assert h.attempts == (FIXED_NOW - timedelta(days=2) + timedelta(seconds=1), FIXED_NOW)
    assert h.attempt_count == 2 and not EMPTY_HISTORY.attempt_count
    assert h.stamps == array("I", [stamp(FIXED_NOW) - 2 * 86400 + 1, stamp(FIXED_NOW)])
    assert stamp(EPOCH - timedelta(days=1)) == 0  # before the epoch: 0, never negative


def test_attempts_since_counts_what_the_stores_count() -> None:
    h = History(FIXED_NOW - timedelta(days=d) for d in (29, 10, 1))
    assert h.attempts_since(FIXED_NOW - timedelta(days=30)) == 3
    assert h.attempts_since(FIXED_NOW - timedelta(days=10)) == 2  # at or after
    assert h.attempts_since(FIXED_NOW - timedelta(days=10) + timedelta(milliseconds=1)) == 1  # since rounded up too
    assert h.attempts_since(FIXED_NOW) == 0 and EMPTY_HISTORY.attempts_since(FIXED_NOW) == 0


def test_a_history_is_a_frozen_value() -> None:
    h = History((FIXED_NOW,), last_refusal=FIXED_NOW)
    assert h == History((FIXED_NOW,), FIXED_NOW) and hash(h) == hash(History((FIXED_NOW,), FIXED_NOW))
    assert h != History((FIXED_NOW,)) and History() == EMPTY_HISTORY
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.last_refusal = None  # type: ignore[misc]
    assert dataclasses.replace(h, opted_out_at=FIXED_NOW).attempts == (FIXED_NOW,)
    with pytest.raises(TypeError):
        History((FIXED_NOW,), stamps=array("I"))
