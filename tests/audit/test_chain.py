"""The hash chain, pure: any change to any column of any row, or any reordering, breaks it at that row."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import COLUMNS, GENESIS, verify_rows
from tests.audit.helpers import chain_rows


def test_verify_rows_pure() -> None:
    rows = chain_rows(3)
    prev = rows[-1][-1]
    assert verify_rows(rows, 0, GENESIS, 3, prev).ok
    assert verify_rows(rows[1:], 1, rows[0][-1], 3, prev).ok  # after a purge of seq 1
    assert verify_rows(rows[1:], 0, GENESIS, 3, prev).bad_seq == 1
    assert verify_rows(rows, 0, GENESIS, 4, "x").bad_seq == 4
    assert verify_rows([], 0, GENESIS, 0, GENESIS).ok


CHAIN = chain_rows(8)


@given(row=st.integers(0, 7), col=st.integers(1, len(COLUMNS) + 2),
       value=st.one_of(st.text(max_size=5), st.integers(), st.floats(allow_nan=False), st.none()))
def test_any_single_change_is_detected_at_its_row(row: int, col: int, value: Any) -> None:
    rows = [list(r) for r in CHAIN]
    if rows[row][col] == value and type(rows[row][col]) is type(value):
        return
    rows[row][col] = value
    v = verify_rows(rows, 0, GENESIS, 8, CHAIN[-1][-1])
    assert not v.ok and v.bad_seq == row + 1, v.message


@given(order=st.permutations(range(8)))
def test_any_reordering_is_detected(order: list[int]) -> None:
    if order == sorted(order):
        return
    moved = [(i + 1, *CHAIN[j][1:]) for i, j in enumerate(order)]  # contents moved, seq numbers kept
    assert not verify_rows(moved, 0, GENESIS, 8, CHAIN[-1][-1]).ok
