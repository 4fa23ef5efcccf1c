"""Delta files: dated additions and removals applied on load, older ones retired by a newer base."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.config import parse
from gateway.numbers import Normaliser
from gateway.registry.deltas import apply_deltas, find_deltas, load_with_deltas, read_delta, write_delta
from gateway.registry.loaders import load_list
from gateway.registry.model import ListKind, RegistryError

FR = Normaliser("FR")


def key(n: str) -> int:
    return FR.parse(n).key


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_read_delta_reports_bad_lines(tmp_path: Path) -> None:
    p = write(tmp_path / "a.delta", "# as_of: 2026-11-21\n+0612000001\n-0612000002\n\n0612000003\n+abc\n"
                                    "+0612000004\n-0612000004\n" + "+0612000010\n" * 40)
    d = read_delta(p, FR)
    assert d.as_of == date(2026, 11, 21)
    assert set(d.added) == {key("0612000001"), key("0612000010")}
    assert set(d.removed) == {key("0612000002"), key("0612000004")}  # added and removed: removal wins
    assert d.report.bad == [(5, "expected +NUMBER (addition) or -NUMBER (removal)"), (6, "not a phone number")]
    with pytest.raises(RegistryError, match="2 of 4 lines are not numbers"):
        read_delta(write(tmp_path / "b.delta", "+0612000001\nxx\n+\n-0612000002\n"), FR, min_bad_lines=2)
    # Two bad lines of four: a share of a tiny file, below the default minimum count, reported but kept.
    assert read_delta(write(tmp_path / "c.delta", "+0612000001\nxx\n+\n-0612000002\n"), FR).report.bad_count == 2


def test_apply_in_date_order_and_skip_what_the_base_already_has(tmp_path: Path) -> None:
    base = write(tmp_path / "bloctel.txt", "# as_of: 2026-11-20\n0612000001\n0612000002\n")
    lst, _ = load_list(base, name="bloctel", kind=ListKind.OPPOSITION, normaliser=FR)
    old = write(tmp_path / "d" / "1.delta", "# as_of: 2026-11-19\n+0612000099\n")
    d2 = write(tmp_path / "d" / "2.delta", "# as_of: 2026-11-22\n-0612000003\n+0612000003\n")
    d1 = write(tmp_path / "d" / "3.delta", "# as_of: 2026-11-21\n+0612000003\n-0612000001\n")
    undated = write(tmp_path / "d" / "0.delta", "+0612000005\n")
    assert find_deltas(tmp_path / "d" / "*.delta") == [undated, old, d2, d1]
    new, report = apply_deltas(lst, [read_delta(p, FR) for p in (old, d2, d1, undated)])
    # 3.delta (21st) adds ...003, then 2.delta (22nd) removes it; the undated one goes last.
    assert set(new.members) == {key("0612000002"), key("0612000005")}
    assert [d.path.name for d in report.applied] == ["3.delta", "2.delta", "0.delta"]
    assert report.skipped[0][0] == old
    assert new.meta.as_of == date(2026, 11, 22) and new.meta.count == 2
    assert new.meta.sha256 != lst.meta.sha256 and "3 delta files" in new.meta.source


def test_config_key_and_load_with_deltas(tmp_path: Path) -> None:
    write(tmp_path / "bloctel.txt", "# as_of: 2026-11-20\n0612000001\n")
    write(tmp_path / "bloctel.d" / "a.delta", "# as_of: 2026-11-21\n+0612000002\nbad\n" + "+0612000003\n" * 30)
    config = parse('[lists.bloctel]\nkind = "opposition"\npath = "bloctel.txt"\ndeltas = "bloctel.d/*.delta"\n',
                   base=tmp_path)
    spec = config.lists["bloctel"]
    assert spec.deltas == str(tmp_path / "bloctel.d" / "*.delta")
    lst, report = load_with_deltas(spec, FR)
    assert set(lst.members) == {key("0612000001"), key("0612000002"), key("0612000003")}
    assert report.bad == [(3, "a.delta: expected +NUMBER (addition) or -NUMBER (removal)")]
    no_deltas = parse('[lists.x]\nkind = "opposition"\npath = "bloctel.txt"\n', base=tmp_path).lists["x"]
    assert no_deltas.deltas == ""
    assert set(load_with_deltas(no_deltas, FR)[0].members) == {key("0612000001")}


def test_write_delta_round_trip(tmp_path: Path) -> None:
    from pyroaring import BitMap64

    p = tmp_path / "out.delta"
    write_delta(p, BitMap64([key("0612000001"), key("+447911123456")]), BitMap64([key("0692000009")]),
                date(2026, 11, 23))
    d = read_delta(p, FR)
    assert d.as_of == date(2026, 11, 23)
    assert set(d.added) == {key("0612000001"), key("+447911123456")}
    assert set(d.removed) == {key("0692000009")}
