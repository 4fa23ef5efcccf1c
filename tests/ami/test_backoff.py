"""Reconnection delays: doubling from a sixteenth of the cap, capped, jittered over the upper half."""

from __future__ import annotations

from gateway.ami.backoff import delay, first_delay


def test_default_cap_gives_the_documented_sequence() -> None:
    assert [delay(a, 30.0, 0.999999) for a in range(7)] == [
        pytest_approx(x) for x in (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0)]


def pytest_approx(x: float) -> object:
    import pytest
    return pytest.approx(x, rel=1e-5)


def test_jitter_spreads_over_the_upper_half() -> None:
    assert delay(2, 30.0, 0.0) == 2.0 and delay(2, 30.0, 0.5) == 3.0
    assert all(2.0 <= delay(2, 30.0, d / 100) < 4.0 for d in range(100))


def test_small_caps_for_tests_and_huge_attempt_counts() -> None:
    assert first_delay(0.4) == 0.025 and first_delay(30.0) == 1.0
    assert delay(10_000, 0.4, 0.999999) <= 0.4
