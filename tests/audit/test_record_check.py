"""``check_record``: one record against its neighbours, as the proof dossier checks a number's records."""

from __future__ import annotations

from gateway.audit import GENESIS, Link, check_record
from tests.audit.helpers import chain_rows


def test_each_record_of_an_intact_chain_checks() -> None:
    rows = chain_rows(6)
    for i, row in enumerate(rows):
        before = GENESIS if i == 0 else rows[i - 1][-1]
        after = rows[i + 1][-2] if i + 1 < len(rows) else rows[-1][-1]  # the head hash for the last one
        assert check_record(row, before, after, anchor_seq=0, head_seq=6).link is Link.INTACT


def test_changed_removed_and_rewritten_neighbours() -> None:
    rows = chain_rows(4)
    changed = (*rows[1][:5], "ALLOW" if rows[1][5] != "ALLOW" else "BLOCK", *rows[1][6:])
    assert check_record(changed, rows[0][-1], rows[2][-2], anchor_seq=0, head_seq=4).link is Link.MODIFIED
    missing_before = check_record(rows[2], None, rows[3][-2], anchor_seq=0, head_seq=4)
    assert (missing_before.link, missing_before.problem) == (Link.UNLINKED, "record seq 2, just before it, was removed")
    assert "just after it" in check_record(rows[1], rows[0][-1], None, anchor_seq=0, head_seq=4).problem
    wrong_next = check_record(rows[1], rows[0][-1], "f" * 64, anchor_seq=0, head_seq=4)
    assert wrong_next.link is Link.UNLINKED and "prev_hash of seq 3" in wrong_next.problem
    assert "head" in check_record(rows[3], rows[2][-1], "f" * 64, anchor_seq=0, head_seq=4).problem
    assert "after the recorded head" in check_record(rows[3], rows[2][-1], None, anchor_seq=0, head_seq=3).problem
