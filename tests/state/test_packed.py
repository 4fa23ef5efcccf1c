"""The packed history (issue 17): the same answers as a dict of lists, pruning by window, refusals and opt-outs,
shards that split as the store grows, and the flat form a snapshot holds."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.state import packed
from gateway.state.packed import Ledger, Runs, RunsBuilder, Stamps, instant, stamp, stamp_of_ts

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def test_instants_round_up_to_the_second() -> None:
    """A stored attempt is never earlier than the real one: a cap counts it a second longer, never misses it."""
    assert instant(stamp(T0)) == T0
    assert instant(stamp(T0 + timedelta(microseconds=1))) == T0 + timedelta(seconds=1)
    assert stamp_of_ts((T0 + timedelta(microseconds=250_000)).timestamp()) == stamp(T0) + 1
    assert stamp_of_ts(T0.timestamp()) == stamp(T0)
    assert stamp(datetime(2001, 1, 1, tzinfo=UTC)) == 0  # before the epoch: the epoch (later, never earlier)
    with pytest.raises(ValueError, match="out of range"):
        stamp(datetime(2200, 1, 1, tzinfo=UTC))


# -- Runs against the dict of lists it replaces ---------------------------------------------------------------------

# (key index, seconds after T0, cap limit or -1, cap window in seconds)
OPS = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 50 * 86400), st.integers(-1, 5),
                         st.integers(1, 40 * 86400)), max_size=300)
KEYS = [33_612_000_000 + 37 * i for i in range(41)]
RET = 31 * 86400


def model_add(model: dict[int, list[int]], key: int, t: int, horizon: int, since: int, limit: int) -> bool:
    """What the unpacked store did: prune the number's list, count the cap, append (kept sorted)."""
    times = [x for x in model.get(key, []) if x >= horizon]
    model[key] = times
    if limit >= 0 and sum(1 for x in times if x >= since) >= limit:
        if not times:
            del model[key]
        return False
    times.append(t)
    times.sort()
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(OPS)
def test_runs_answer_as_the_unpacked_store(monkeypatch: pytest.MonkeyPatch,
                                           ops: list[tuple[int, int, int, int]]) -> None:
    # shards split after a few numbers: every path of the linear hashing (the same patch for every example)
    monkeypatch.setattr(packed, "LOAD", 2)
    runs = Runs(level=1)
    model: dict[int, list[int]] = {}
    base = stamp(T0)
    for k, dt, limit, window in ops:
        key, t = KEYS[k], base + dt
        got = runs.add(key, t, t - RET, t - window, limit)
        assert got == model_add(model, key, t, t - RET, t - window, limit)
    for key in KEYS:
        assert list(runs.run(key) or []) == model.get(key, [])
        assert runs.count(key) == len(model.get(key, []))
    assert runs.size == len(model) and runs.attempts() == sum(map(len, model.values()))
    assert runs.shards > 2 or len(model) <= 4


def test_a_number_whose_attempts_all_expired_starts_afresh() -> None:
    runs = Runs()
    k, t = KEYS[0], stamp(T0)
    assert runs.add(k, t, t - RET) and runs.add(KEYS[1], t, t - RET)
    later = t + 40 * 86400
    assert runs.add(k, later, later - RET)
    assert list(runs.run(k) or []) == [later] and list(runs.run(KEYS[1]) or []) == [t]


def test_a_zero_cap_refuses_the_first_attempt() -> None:
    runs = Runs()
    assert not runs.add(KEYS[0], 100, 0, 0, 0)
    assert runs.run(KEYS[0]) is None and runs.size == 0


def test_reads_skip_what_the_window_no_longer_needs() -> None:
    runs = Runs()
    for d in (0, 10, 20):
        t = stamp(T0) + d * 86400
        runs.add(KEYS[0], t, t - RET)
    day_35 = stamp(T0) + 35 * 86400
    assert list(runs.run(KEYS[0], day_35 - RET) or []) == [stamp(T0) + 10 * 86400, stamp(T0) + 20 * 86400]


def test_prune_drops_expired_attempts_and_empty_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packed, "LOAD", 4)
    runs = Runs(level=1)
    old, new = stamp(T0), stamp(T0) + 40 * 86400
    for key in KEYS:
        runs.add(key, old, 0)
    for key in KEYS[::2]:
        runs.add(key, new, 0)
    before = runs.nbytes()
    dropped = sum(runs.prune_shard(s, new - RET) for s in range(runs.shards))
    assert dropped == len(KEYS)
    assert runs.size == len(KEYS[::2]) and runs.attempts() == len(KEYS[::2])
    assert all(list(runs.run(k) or []) == ([new] if i % 2 == 0 else []) for i, k in enumerate(KEYS))
    assert runs.nbytes() < before
    assert sum(runs.prune_shard(s, new - RET) for s in range(runs.shards)) == 0  # nothing left to drop


def test_bulk_build_equals_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packed, "LOAD", 3)
    rows = sorted((KEYS[i % 41], 1000 + i * 7) for i in range(500))
    b = RunsBuilder(len(rows))
    b.extend(rows)
    built = b.done()
    one = Runs()
    for k, t in rows:
        one.add(k, t, 0)
    assert built.size == one.size == 41 and built.size <= packed.LOAD * built.shards
    assert all(list(built.run(k) or []) == list(one.run(k) or []) for k in KEYS)


# -- refusals and opt-outs -------------------------------------------------------------------------------------------


def test_stamps_keep_the_latest_refusal_and_the_first_optout_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packed, "LOAD", 2)
    refusals, optouts = Stamps(level=1), Stamps(level=1)
    assert refusals.get(KEYS[0]) is None
    for i, key in enumerate(KEYS):
        assert refusals.put(key, 100 + i, later=True) and optouts.put(key, 100 + i, later=False)
    assert refusals.put(KEYS[0], 500, later=True) and not refusals.put(KEYS[0], 400, later=True)
    assert not optouts.put(KEYS[0], 500, later=False) and not optouts.put(KEYS[0], 50, later=False)
    assert refusals.get(KEYS[0]) == 500 and optouts.get(KEYS[0]) == 100  # the first opt-out stands
    assert [refusals.get(k) for k in KEYS[1:]] == [100 + i for i in range(1, 41)]
    assert refusals.size == 41 and refusals.shards > 2
    assert sum(refusals.prune_shard(s, 120) for s in range(refusals.shards)) == 19
    assert refusals.get(KEYS[5]) is None and refusals.get(KEYS[30]) == 130 and refusals.get(KEYS[0]) == 500


# -- the flat form (snapshots) ---------------------------------------------------------------------------------------


def _ledger() -> Ledger:
    led = Ledger()
    base = stamp(T0)
    for i in range(3000):
        key = 33_612_000_000 + (i * 7919) % 5000
        led.attempts.add(key, base + i * 60, 0)
        if i % 7 == 0:
            led.refusals.put(key, base + i, later=True)
        if i % 11 == 0:
            led.optouts.put(key, base + i, later=False)
    return led


def test_flat_form_round_trip() -> None:
    led = _ledger()
    again = Ledger.from_flat([array(c.typecode, c) for c in led.flat()])
    for key in range(33_612_000_000, 33_612_005_000):
        assert again.history(key, 0, 0) == led.history(key, 0, 0)
    assert again.attempts.shards == led.attempts.shards and again.nbytes() <= led.nbytes()


def test_flat_form_that_does_not_add_up_is_refused() -> None:
    cols = _ledger().flat()
    cols[2] = cols[2][:-1]  # a key short
    with pytest.raises(ValueError, match="do not add up"):
        Ledger.from_flat(cols)
    with pytest.raises(ValueError, match="columns"):
        Ledger.from_flat(cols[:5])


def test_history_of_a_ledger() -> None:
    led = Ledger()
    k = KEYS[0]
    t = stamp(T0)
    led.attempts.add(k, t, 0)
    led.refusals.put(k, t, later=True)
    h = led.history(k, 0, 0)
    assert h.attempts == (T0,) and h.last_refusal == T0 and h.opted_out_at is None
    assert led.history(k, 0, t + 1).last_refusal is None  # the refusal's retention is over
    assert led.history(KEYS[1], 0, 0).attempts == ()


def test_a_long_run_is_counted_without_a_datetime_and_its_instants_built_once() -> None:
    led = Ledger()
    k, t = KEYS[0], stamp(T0)
    for i in range(100):
        led.attempts.add(k, t + i * 60, 0)
    h = led.history(k, 0, 0)
    assert h.attempt_count == 100 and h._instants is None
    assert h.attempts_since(T0 + timedelta(minutes=90)) == 10  # a bisection in the stamps
    assert h._instants is None  # counting built no datetime
    first = h.attempts
    assert h.attempts is first and first[0] == T0 and first[-1] == instant(t + 99 * 60)  # built once
    assert led.history(k, t + 1, 0).attempts == first[1:]  # a later horizon
